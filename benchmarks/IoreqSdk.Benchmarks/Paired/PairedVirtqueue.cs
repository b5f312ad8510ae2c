using System.Diagnostics;
using System.Runtime.InteropServices;

namespace IoreqSdk.Benchmarks.Paired;

/// <summary>
/// The virtqueue consumer's ratio, measured in pairs: batches of <c>native/virtqueue.c</c>'s split-ring consumer
/// alternate with batches of <see cref="VirtqueueBenchmarks"/> (the SDK's <c>VirtioQueue</c>) on this thread, both
/// rings driven by the C file's driver functions, so the two sides differ in the consumer alone.
/// </summary>
internal static unsafe class PairedVirtqueue
{
    public static bool Run(nint library, bool isShort)
    {
        var floor = (delegate* unmanaged<long, double>)NativeLibrary.GetExport(library, "vq_floor_run");
        var init = (delegate* unmanaged<VirtqueueBenchmarks.VirtqueueDriver*, byte*, ulong, void>)NativeLibrary.GetExport(library, "vq_driver_init");
        // The driver's two calls per round without the runtime's GC transition (a frame set up and torn down, and a GC
        // poll on the way back: tens of nanoseconds per round that the C side, calling them directly, does not pay).
        // Safe here: both are short, never block, and never call back into .NET.
        var post = (delegate* unmanaged[SuppressGCTransition]<VirtqueueBenchmarks.VirtqueueDriver*, void>)NativeLibrary.GetExport(library, "vq_driver_post");
        var reap = (delegate* unmanaged[SuppressGCTransition]<VirtqueueBenchmarks.VirtqueueDriver*, int>)NativeLibrary.GetExport(library, "vq_driver_reap");
        using var benchmark = new VirtqueueBenchmarks();
        benchmark.Setup();
        benchmark.UseDriver(init, post, reap);
        int pairs = isShort ? 5 : 30;
        long rounds = isShort ? 2_000 : 20_000;   // 170,000 or 1.7 million chains: about 2 and 20 ms per batch
        return Pairs.Measure("virtqueue-pop-push", pairs, () => floor(rounds), () => Batch(benchmark, rounds));
    }

    private static double Batch(VirtqueueBenchmarks benchmark, long rounds)
    {
        long start = Stopwatch.GetTimestamp();
        for (long r = 0; r < rounds; r++)
        {
            if (benchmark.PopPush() != VirtqueueBenchmarks.Chains)
            {
                return -1;
            }
        }

        return Stopwatch.GetElapsedTime(start).TotalNanoseconds / (rounds * VirtqueueBenchmarks.Chains);
    }
}
