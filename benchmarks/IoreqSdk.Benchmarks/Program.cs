using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using System;
using System.IO;
using System.Runtime.InteropServices;
using IoreqSdk.Benchmarks.Loopback;
using IoreqSdk.Benchmarks.Paired;

// `paired NATIVE_DIR [--short] [--only GROUP]`: the ratios against C (round trips, several vCPUs at once, dispatch, the virtqueue consumer and virtio-blk end to end), measured in alternating batches
// against the libraries run.sh builds from benchmarks/native (see Paired/Pairs.cs).
if (args.Length > 0 && args[0] == "paired")
{
    if (args.Length < 2)
    {
        Console.Error.WriteLine("usage: paired NATIVE_DIR [--short] [--only dispatch|virtqueue|roundtrip|scaling|blk|pci]   (NATIVE_DIR holds libslot_roundtrip.so, libdispatch.so, libvirtqueue.so and libblk_roundtrip.so)");
        return 2;
    }

    bool isShort = Array.IndexOf(args, "--short") > 1;

    // --only dispatch|virtqueue|roundtrip|scaling|blk|pci: one group (to profile it, or to re-measure it on a quiet machine).
    int only = Array.IndexOf(args, "--only");
    string? group = only > 1 && only + 1 < args.Length ? args[only + 1] : null;
    bool Runs(string name) => group is null || group == name;

    // Every thread of the C and C# sides that is not a server's starts on CPU 0: this one.
    ThreadAffinity.PinCurrentThread(0);
    bool ok = (!Runs("dispatch") || PairedDispatch.Run(NativeLibrary.Load(Path.Combine(args[1], "libdispatch.so")), isShort))
        && (!Runs("virtqueue") || PairedVirtqueue.Run(NativeLibrary.Load(Path.Combine(args[1], "libvirtqueue.so")), isShort))
        && (!Runs("roundtrip") || PairedRoundTrip.Run(NativeLibrary.Load(Path.Combine(args[1], "libslot_roundtrip.so")), isShort))
        && (!Runs("scaling") || PairedScaling.Run(NativeLibrary.Load(Path.Combine(args[1], "libslot_roundtrip.so")), isShort))
        && (!Runs("blk") || PairedBlk.Run(NativeLibrary.Load(Path.Combine(args[1], "libblk_roundtrip.so")), isShort))
        && (!Runs("pci") || PairedPci.Run(isShort));
    return ok ? 0 : 1;
}

IConfig config = DefaultConfig.Instance
    .AddDiagnoser(MemoryDiagnoser.Default)
    .AddJob(Job.Default.WithGcServer(false).WithGcConcurrent(false).WithEnvironmentVariable("DOTNET_TieredPGO", "0").AsDefault())
    .AddColumn(StatisticColumn.Median);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
return 0;

/// <summary>The entry point's type, for BenchmarkSwitcher.</summary>
internal sealed partial class Program
{
}
