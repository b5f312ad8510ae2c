using System.Reflection;
using System.Runtime.Versioning;
using IoreqSdk.Abi;
using NUnit.Framework;

namespace IoreqSdk.Tests;

/// <summary>The suite runs twice, once per asset of the package; this proves which asset a run exercised.</summary>
[TestFixture]
public sealed class LibraryBuildTests
{
    [Test]
    public void TheSuiteRunsAgainstTheIntendedBuildOfTheLibrary()
    {
        string? framework = typeof(IoRequest).Assembly.GetCustomAttribute<TargetFrameworkAttribute>()?.FrameworkName;
#if LIBRARY_NETSTANDARD
        Assert.That(framework, Is.EqualTo(".NETStandard,Version=v2.0"));
#else
        Assert.That(framework, Is.EqualTo(".NETCoreApp,Version=v10.0"));
#endif
    }
}
