using System;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace IoreqSdk.Benchmarks.Paired;

/// <summary>
/// The dispatch ratios, measured in pairs: batches of the C dispatcher (<c>native/dispatch.c</c> built as a shared
/// library) alternate with batches of <see cref="DispatchBenchmarks"/>' own cases (the same dispatcher, regions and
/// requests BenchmarkDotNet measures) on this thread.
/// </summary>
internal static unsafe class PairedDispatch
{
    private const ulong Written = 0x1234_5678;   // what DispatchBenchmarks' write writes
    private static readonly string[] Kinds = ["read", "write", "scattered"];

    public static bool Run(nint library, bool isShort)
    {
        var floor = (delegate* unmanaged<int, int, long, double>)NativeLibrary.GetExport(library, "dispatch_floor_run");
        int pairs = isShort ? 5 : 30;
        int batch = isShort ? 200_000 : 2_000_000;   // about 2 and 20 ms per batch
        WarmUpEveryPath();
        foreach (int regions in new[] { 1, 16, 256 })
        {
            var benchmark = new DispatchBenchmarks { Regions = regions };
            benchmark.Setup();
            _ = benchmark.MmioWrite();   // the register the reads read now holds the written value
            for (int kind = 0; kind < Kinds.Length; kind++)
            {
                int k = kind;
                if (!Pairs.Measure($"dispatch-{Kinds[k]}-{regions}", pairs, () => floor(regions, k, batch), () => Batch(benchmark, k, batch)))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Runs reads, writes and scattered reads interleaved until the dispatcher's code is at its last tier.</summary>
    /// <remarks>
    /// The dispatcher serves every kind of request through one method, which the runtime recompiles with the profile
    /// it gathered in its first few hundred milliseconds (dynamic PGO). Measured case by case, that profile would hold
    /// the first case alone — reads, whose device call PGO then inlines behind a type check, while the writes' call
    /// stays an interface call — and the cases' ratios would depend on their order. A server meets every kind mixed;
    /// so does this warm-up, before any case is measured.
    /// </remarks>
    private static void WarmUpEveryPath()
    {
        var benchmark = new DispatchBenchmarks { Regions = 16 };
        benchmark.Setup();
        long start = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(1))
        {
            for (int i = 0; i < 10_000; i++)
            {
                _ = benchmark.MmioRead();
                _ = benchmark.MmioWrite();
                _ = benchmark.MmioReadScattered();
            }
        }
    }

    private static double Batch(DispatchBenchmarks benchmark, int kind, int count)
    {
        ulong sink = 0;
        long start = Stopwatch.GetTimestamp();
        switch (kind)
        {
            case 0:
                for (int i = 0; i < count; i++)
                {
                    sink += benchmark.MmioRead();
                }

                break;
            case 1:
                for (int i = 0; i < count; i++)
                {
                    sink += benchmark.MmioWrite();
                }

                break;
            default:
                for (int i = 0; i < count; i++)
                {
                    sink += benchmark.MmioReadScattered();
                }

                break;
        }

        double ns = Stopwatch.GetElapsedTime(start).TotalNanoseconds / count;

        // A read returns the written value and a write answers with it; the scattered reads mostly read other
        // regions' registers, which hold nothing to check.
        return kind == 2 || sink == Written * (ulong)count ? ns : -1;
    }
}
