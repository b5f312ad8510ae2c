using System;
using System.IO;
using System.Linq;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>The dispatcher is the layer under the server and the PCI model: it needs neither.</summary>
[TestFixture]
public sealed class LayeringTests
{
    [TestCase("IoreqSdk.Server")]
    [TestCase("IoreqSdk.Pci")]
    public void TheDispatcherUsesNeitherTheServerNorThePciModel(string forbidden)
    {
        string dispatch = Path.Combine(Repository.Root(), "src", "IoreqSdk", "Dispatch");
        string[] sources = Directory.GetFiles(dispatch, "*.cs", SearchOption.AllDirectories);
        Assert.That(sources, Is.Not.Empty, "the dispatcher's sources are where the test looks");

        string[] offenders = sources
            .Where(file => File.ReadLines(file).Any(line => UsesNamespace(line, forbidden)))
            .Select(file => Path.GetFileName(file))
            .ToArray();
        Assert.That(offenders, Is.Empty, $"files under src/IoreqSdk/Dispatch with 'using {forbidden};' or a '{forbidden}.' name");
    }

    private static bool UsesNamespace(string line, string name)
    {
        string trimmed = line.Trim();
        return trimmed.StartsWith("using " + name + ";", StringComparison.Ordinal)
            || trimmed.StartsWith("using static " + name + ".", StringComparison.Ordinal)
            || (!trimmed.StartsWith("//", StringComparison.Ordinal) && trimmed.Contains(name + ".", StringComparison.Ordinal));
    }
}
