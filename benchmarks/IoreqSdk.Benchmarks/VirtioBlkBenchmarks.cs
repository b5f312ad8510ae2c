using System;
using BenchmarkDotNet.Attributes;
using IoreqSdk.Benchmarks.Blk;
using IoreqSdk.Benchmarks.Loopback;

namespace IoreqSdk.Benchmarks;

/// <summary>
/// A virtio-blk read end to end over the loopback Xen (<see cref="VirtioBlkLoopback"/>): the guest posts a
/// three-descriptor chain, kicks with a QueueNotify write, the server pops it and its device's I/O thread preadv's a
/// page-cached image straight into guest RAM, the server writes the used entry and raises the line, the guest takes
/// the interrupt (InterruptStatus, InterruptACK) and the used entry. Eventfds, every thread on CPU 0, as the paired
/// runner's one-core case. The ratios against C come from the paired runner (<c>Paired/PairedBlk.cs</c>, whose guest is
/// C's on both sides); this measures the SDK's path with the C# guest, and its bytes per read.
/// </summary>
public class VirtioBlkBenchmarks
{
    private VirtioBlkLoopback _blk = null!;

    [GlobalSetup]
    public void Setup()
    {
        // BenchmarkDotNet runs the global setup on the thread that runs the benchmark: the guest's thread.
        bool pin = Environment.ProcessorCount >= 2;
        if (pin)
        {
            ThreadAffinity.PinCurrentThread(0);
        }

        _blk = new VirtioBlkLoopback(Notification.EventFd, pin ? 0 : -1, pin ? 0 : -1);
    }

    [GlobalCleanup]
    public void Cleanup() => _blk.Dispose();

    /// <summary>A 4 KiB read of a pseudo-random 4 KiB-aligned block.</summary>
    [Benchmark]
    public bool RandomRead4K() => Check(_blk.Read(_blk.NextRandom(4096), 4096));

    /// <summary>The next 64 KiB of the image (MB/s: 65,536 / ns × 1000).</summary>
    [Benchmark]
    public bool SequentialRead64K() => Check(_blk.Read(_blk.NextSequential(65536), 65536));

    // A read that came back wrong fails the run: a broken path must not look fast.
    private static bool Check(bool ok) => ok ? ok : throw new InvalidOperationException("A virtio-blk read came back wrong.");
}
