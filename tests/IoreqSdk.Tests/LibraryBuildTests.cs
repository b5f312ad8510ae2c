using System;
using System.Reflection;
using System.Runtime.Versioning;
using IoreqSdk.Abi;
using IoreqSdk.Devices.Edu;
using NUnit.Framework;

namespace IoreqSdk.Tests;

/// <summary>The suite runs twice, once per asset of the packages; this proves which asset a run exercised.</summary>
[TestFixture]
public sealed class LibraryBuildTests
{
    [TestCase(typeof(IoRequest), TestName = "IoreqSdk")]
    [TestCase(typeof(EduDevice), TestName = "IoreqSdk.Devices")]
    public void TheSuiteRunsAgainstTheIntendedBuildOfTheLibrary(Type fromPackage)
    {
        string? framework = fromPackage.Assembly.GetCustomAttribute<TargetFrameworkAttribute>()?.FrameworkName;
#if LIBRARY_NETSTANDARD
        Assert.That(framework, Is.EqualTo(".NETStandard,Version=v2.0"));
#else
        Assert.That(framework, Is.EqualTo(".NETCoreApp,Version=v10.0"));
#endif
    }
}
