using System;
using System.Runtime.InteropServices;
using IoreqSdk.Benchmarks.Loopback;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks.Paired;

/// <summary>
/// Several vCPUs at once, measured in pairs: 1, 4 and 16 producer threads of <c>native/slot_roundtrip.c</c> (one per
/// vCPU, each on its own slot, eventfd notification) drive either the C file's consumers or an <see cref="IoreqServer"/>
/// behind the loopback page; the time per request over all vCPUs. One loop (one consumer thread) for every count, and
/// two loops (<see cref="IoreqServerOptions.LoopThreads"/>, the register region declared concurrent; two C consumer
/// threads, vCPU v on loop v % 2) for 4 and 16. The producers are pinned to CPU 0 and loop 0 to CPU 1, on both sides;
/// a second loop is left to the scheduler on both sides.
/// </summary>
/// <remarks>
/// The same producers on both sides, so the difference is the consumer's: per wake-up, how many requests it takes
/// and what each costs. With more vCPUs, more requests wait per wake-up, so the time per request falls on both sides.
/// </remarks>
internal static unsafe class PairedScaling
{
    private const int ProducerCpu = 0;
    private const int ConsumerCpu = 1;

    public static bool Run(nint library, bool isShort)
    {
        if (Environment.ProcessorCount < 2)
        {
            Console.Error.WriteLine("One CPU: the vCPU-scaling pairs need two and are skipped.");
            return true;
        }

        var start = (delegate* unmanaged<int, int, int, int>)NativeLibrary.GetExport(library, "slot_floor_start_many");
        var run = (delegate* unmanaged<long, int, double>)NativeLibrary.GetExport(library, "slot_floor_run_many");
        var stop = (delegate* unmanaged<void>)NativeLibrary.GetExport(library, "slot_floor_stop_many");
        var produce = (delegate* unmanaged<nint, int, int*, int*, long, int, double>)NativeLibrary.GetExport(library, "slot_produce_many");
        int pairs = isShort ? 5 : 30;
        // Round trips per vCPU and batch: with more vCPUs a request costs less (more of them per wake-up), and each
        // batch takes some milliseconds either way (400 round trips of one vCPU about 6 ms on this kind of machine).
        long each = isShort ? 100 : 400;
        foreach ((int vcpus, int loops) in new[] { (1, 1), (4, 1), (16, 1), (4, 2), (16, 2) })
        {
            using var xen = loops == 1 ? new LoopbackXen(GuestArchitecture.X86, vcpus, Notification.EventFd, ConsumerCpu) : new LoopbackXen(vcpus, loops, ConsumerCpu);
            using IoreqServer server = PairedRoundTrip.StartRegisterServer(xen);
            int[] toServer = new int[vcpus];
            int[] fromServer = new int[vcpus];
            for (int v = 0; v < vcpus; v++)
            {
                toServer[v] = xen.ServerEventFd(v);
                fromServer[v] = xen.Channel.VcpuEventFd(v);
            }

            if (!Pairs.Measure(
                loops == 1 ? $"scaling-eventfd-{vcpus}vcpus" : $"scaling-eventfd-{vcpus}vcpus-{loops}loops",
                pairs,
                () => Floor(start, run, stop, vcpus, loops, each),
                () => Sdk(produce, xen.Page, vcpus, toServer, fromServer, each)))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>One batch of the C side, its consumer started for the batch (as the round-trip floor's is).</summary>
    private static double Floor(delegate* unmanaged<int, int, int, int> start, delegate* unmanaged<long, int, double> run, delegate* unmanaged<void> stop, int vcpus, int loops, long each)
    {
        if (start(vcpus, loops, ConsumerCpu) != 0)
        {
            throw new InvalidOperationException("slot_floor_start_many failed.");
        }

        try
        {
            _ = run(Math.Max(1, each / 10), ProducerCpu);   // untimed: the new thread settles on its CPU
            return run(each, ProducerCpu);
        }
        finally
        {
            stop();
        }
    }

    private static double Sdk(delegate* unmanaged<nint, int, int*, int*, long, int, double> produce, nint page, int vcpus, int[] toServer, int[] fromServer, long each)
    {
        fixed (int* to = toServer)
        fixed (int* from = fromServer)
        {
            _ = produce(page, vcpus, to, from, Math.Max(1, each / 10), ProducerCpu);   // untimed, as the floor's
            return produce(page, vcpus, to, from, each, ProducerCpu);
        }
    }
}
