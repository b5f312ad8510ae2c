using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Xen;

/// <summary>
/// The interop layer proven against Xen 4.17's real headers and libraries: every P/Invoke's C# signature is turned
/// into C++ static_asserts over the prototype the header declares (count, return, each parameter's width, sign and
/// pointer level) and compiled; every entry point must be exported by the installed library.
/// </summary>
[TestFixture]
public sealed class NativeSignatureTests
{
    private static readonly Lazy<(int ExitCode, string Errors)> s_compiled = new(Compile);

    private static IEnumerable<TestCaseData> Imports() =>
        NativeSignatures.All.Select(m => new TestCaseData(m).SetArgDisplayNames(NativeSignatures.EntryPoint(m)));

    [Test]
    public void TheInteropLayerCoversTheReferenceApi()
    {
        var entries = NativeSignatures.All.Select(NativeSignatures.EntryPoint).ToHashSet(StringComparer.Ordinal);
        string[] required =
        [
            "xendevicemodel_open", "xendevicemodel_close", "xendevicemodel_create_ioreq_server", "xendevicemodel_get_ioreq_server_info",
            "xendevicemodel_map_io_range_to_ioreq_server", "xendevicemodel_unmap_io_range_from_ioreq_server",
            "xendevicemodel_map_pcidev_to_ioreq_server", "xendevicemodel_unmap_pcidev_from_ioreq_server", "xendevicemodel_set_ioreq_server_state",
            "xendevicemodel_destroy_ioreq_server", "xendevicemodel_set_pci_intx_level", "xendevicemodel_set_isa_irq_level",
            "xendevicemodel_set_irq_level", "xendevicemodel_inject_msi", "xendevicemodel_nr_vcpus",
            "xendevicemodel_restrict",
            "xenforeignmemory_open", "xenforeignmemory_close", "xenforeignmemory_map", "xenforeignmemory_unmap",
            "xenforeignmemory_map_resource", "xenforeignmemory_unmap_resource", "xenforeignmemory_restrict",
            "xenevtchn_open", "xenevtchn_close", "xenevtchn_fd", "xenevtchn_notify", "xenevtchn_bind_interdomain", "xenevtchn_unbind",
            "xenevtchn_pending", "xenevtchn_unmask", "xenevtchn_restrict",
            "xs_open", "xs_close", "xs_read", "xs_write", "xs_rm", "xs_directory", "xs_get_permissions", "xs_set_permissions",
            "xs_transaction_start", "xs_transaction_end", "xs_watch", "xs_unwatch", "xs_read_watch", "xs_check_watch", "xs_fileno",
            "xs_get_domain_path", "free",
        ];

        Assert.That(required.Where(r => !entries.Contains(r)), Is.Empty, "functions the SDK serves with and has no P/Invoke for");
    }

    // No dead interop: every P/Invoke has a caller in the library (the reference API table's functions the SDK does
    // not use — set_mem_type, inject_event, shutdown and the rest — are declared when a feature needs them).
    [TestCaseSource(nameof(Imports))]
    public void EveryImportHasACaller(MethodInfo import)
    {
        string root = Repository.Root();

        string call = $"{import.DeclaringType!.Name}.{import.Name}(";
        bool called = Directory.EnumerateFiles(Path.Combine(root, "src", "IoreqSdk"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}Interop{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Any(f => File.ReadAllText(f).Contains(call, StringComparison.Ordinal));

        Assert.That(called, Is.True, $"{call}...) is declared but nothing in src/IoreqSdk calls it: delete it or give it a caller");
    }

    [TestCaseSource(nameof(Imports))]
    public void MatchesTheHeadersPrototype(MethodInfo import)
    {
        string entry = NativeSignatures.EntryPoint(import);
        (int exitCode, string errors) = s_compiled.Value;
        string[] mine = errors.Split('\n').Where(l => l.Contains(entry, StringComparison.Ordinal)).ToArray();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(mine, Is.Empty, $"{import.DeclaringType!.Name}.{import.Name} disagrees with the C prototype");
            Assert.That(exitCode == 0 || errors.Contains("static assertion failed", StringComparison.Ordinal), Is.True, $"the proof did not compile:\n{errors}");
        }
    }

    [TestCaseSource(nameof(Imports))]
    public void UsesTheSonameAndSetsErrnoWhereTheLibraryDoes(MethodInfo import)
    {
        var attribute = import.GetCustomAttribute<DllImportAttribute>()!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(attribute.Value, Does.Match(@"^lib[a-z]+\.so\.[0-9]+$"), "a SONAME, not a development symlink");
            Assert.That(attribute.EntryPoint, Is.Not.Null.And.Not.Empty);
            if (attribute.Value.StartsWith("libxen", StringComparison.Ordinal))
            {
                Assert.That(attribute.SetLastError, Is.True, "Xen's libraries report failures through errno");
            }

            Assert.That(import.GetParameters().All(p => p.ParameterType.IsPointer || p.ParameterType.IsPrimitive), Is.True, "blittable parameters only");
        }
    }

    [TestCaseSource(nameof(Imports))]
    public void IsExportedByTheInstalledLibrary(MethodInfo import)
    {
        string library = NativeSignatures.Library(import);
        if (!NativeLibrary.TryLoad(library, out nint handle))
        {
            ExternalProcess.Unavailable($"{library} is not installed", "libxen-dev");
        }

        try
        {
            Assert.That(NativeLibrary.TryGetExport(handle, NativeSignatures.EntryPoint(import), out _), Is.True, $"{library} exports {NativeSignatures.EntryPoint(import)}");
        }
        finally
        {
            NativeLibrary.Free(handle);
        }
    }

    [Test]
    public void AWrongWidthFailsTheProof()
    {
        // The proof's own control: the same generator over a deliberately wrong declaration must be rejected.
        MethodInfo wrong = typeof(WrongDeclarations).GetMethod(nameof(WrongDeclarations.CreateIoreqServer), BindingFlags.Static | BindingFlags.NonPublic)!;
        (int exitCode, string errors) = CompileSource(NativeSignatures.Generate([wrong]));

        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(errors, Does.Contain("[xendevicemodel_create_ioreq_server] parameter 1 (domid) is not UInt32"));
    }

    private static (int ExitCode, string Errors) Compile() => CompileSource(NativeSignatures.Generate(NativeSignatures.All));

    private static (int ExitCode, string Errors) CompileSource(string source)
    {
        string directory = Path.Combine(Path.GetTempPath(), "ioreqsdk-signatures-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(directory);
        string file = Path.Combine(directory, $"proof-{Guid.NewGuid():N}.cpp");
        File.WriteAllText(file, source);
        (int, string, string) result;
        try
        {
            result = ExternalProcess.Run("g++", ["-std=c++20", "-fsyntax-only", "-Wall", "-Werror", "-Wno-ignored-attributes", file]);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            ExternalProcess.Unavailable($"g++ could not be started ({e.Message})", "g++ libxen-dev");
            throw;
        }

        if (result.Item3.Contains("xendevicemodel.h: No such file", StringComparison.Ordinal))
        {
            ExternalProcess.Unavailable("Xen's headers are not installed", "libxen-dev");
        }

        return (result.Item1, result.Item3);
    }

    private static class WrongDeclarations
    {
        // domid_t is 16 bits: a 32-bit domid here is the kind of mistake the proof exists to catch.
        [DllImport("libxendevicemodel.so.1", EntryPoint = "xendevicemodel_create_ioreq_server", SetLastError = true)]
        internal static extern unsafe int CreateIoreqServer(nint dmod, uint domid, int handleBufioreq, ushort* id);
    }
}
