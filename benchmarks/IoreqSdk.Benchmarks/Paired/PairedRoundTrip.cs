using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using IoreqSdk.Abi;
using IoreqSdk.Benchmarks.Loopback;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks.Paired;

/// <summary>
/// The round-trip ratios, measured in pairs (<see cref="Pairs"/>): batches of the C floor
/// (<c>native/slot_roundtrip.c</c> built as a shared library) alternate with batches through
/// <see cref="IoreqServer"/>. Both sides are driven by the same C producer on the same thread and CPU, and each
/// consumer runs on the same CPU, so the difference is the consumer alone.
/// </summary>
internal static unsafe class PairedRoundTrip
{
    // What the C producer reads, and what it expects back (native/slot_roundtrip.c).
    private const ulong Register = 0xE000_0010;
    private const ulong Expected = 0x600D;

    /// <summary>Busy-poll across two cores, a busy-polling server over Xen's event-channel semantics across two, eventfd
    /// on one core (the floor) and across two.</summary>
    public static bool Run(nint library, bool isShort)
    {
        var floor = new NativeFloor(library);
        int pairs = isShort ? 10 : 100;
        var scenarios = new List<(string Name, Notification Notification, int ServerCpu, int Batch)>
        {
            ("roundtrip-eventfd-1core", Notification.EventFd, 0, 500),
        };
        if (Environment.ProcessorCount >= 2)
        {
            scenarios.Insert(0, ("roundtrip-busy-2cores", Notification.BusyPoll, 1, 20_000));
            scenarios.Insert(1, ("roundtrip-polled-2cores", Notification.ServerPolls, 1, 20_000));
            scenarios.Add(("roundtrip-eventfd-2cores", Notification.EventFd, 1, 100));
        }
        else
        {
            Console.Error.WriteLine("One CPU: the busy-poll and cross-core pairs need two and are skipped.");
        }

        foreach (var scenario in scenarios)
        {
            bool busy = scenario.Notification == Notification.BusyPoll;
            using var xen = new LoopbackXen(GuestArchitecture.X86, 1, scenario.Notification, scenario.ServerCpu);
            using IoreqServer server = StartRegisterServer(xen);
            if (busy)
            {
                xen.Channel.Park();
            }

            if (!Pairs.Measure(
                scenario.Name,
                pairs,
                () => RunFloor(floor, scenario.Notification, scenario.ServerCpu, scenario.Batch),
                () => RunSdk(floor, xen, scenario.Notification, scenario.Batch)))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The server the C producer drives: the register device it reads at <see cref="Register"/>, started, the register
    /// set to <see cref="Expected"/> through one round trip of vCPU 0.
    /// </summary>
    internal static IoreqServer StartRegisterServer(LoopbackXen xen)
    {
        IoreqServer server = xen.CreateServer();
        server.AddDevice(new RegisterDevice(0xE000_0000, concurrent: xen.Loops > 1));
        server.Start();
        xen.RoundTrip(0, IoreqType.Copy, Register, 8, write: true, Expected);
        return server;
    }

    /// <summary>native/slot_roundtrip.c's modes.</summary>
    private static int Mode(Notification notification) => notification switch
    {
        Notification.EventFd => 0,
        Notification.BusyPoll => 1,
        _ => 2,
    };

    /// <summary>One batch of the C floor, its consumer thread started for the batch on the server's CPU.</summary>
    private static double RunFloor(NativeFloor floor, Notification notification, int cpu, int batch)
    {
        if (floor.Start(Mode(notification), cpu) != 0)
        {
            throw new InvalidOperationException("slot_floor_start failed.");
        }

        try
        {
            floor.Run(Math.Max(1, batch / 10));   // untimed: the new thread settles on its CPU
            return floor.Run(batch);
        }
        finally
        {
            floor.Stop();
        }
    }

    /// <summary>One batch through the server, driven by the C producer; a server spinning in the loopback's channel
    /// spins only for its batch (one polling by itself sleeps after its poll time, as the C floor's consumer does).</summary>
    private static double RunSdk(NativeFloor floor, LoopbackXen xen, Notification notification, int batch)
    {
        bool busy = notification == Notification.BusyPoll;
        if (busy)
        {
            xen.Channel.Unpark();
        }

        try
        {
            if (notification == Notification.ServerPolls)
            {
                floor.ProducePolled(xen.Page, xen.Channel.Port(0), Math.Max(1, batch / 10));   // untimed
                return floor.ProducePolled(xen.Page, xen.Channel.Port(0), batch);
            }

            int toServer = xen.Channel.ServerEventFd;
            int fromServer = xen.Channel.VcpuEventFd(0);
            floor.Produce(xen.Page, Mode(notification), toServer, fromServer, Math.Max(1, batch / 10));   // untimed
            return floor.Produce(xen.Page, Mode(notification), toServer, fromServer, batch);
        }
        finally
        {
            if (busy)
            {
                xen.Channel.Park();
            }
        }
    }

    /// <summary>The C side's entry points: the floor (<c>slot_floor_start</c>, <c>_run</c>, <c>_stop</c>) and its producer
    /// alone (<c>slot_produce</c>, <c>slot_produce_polled</c>).</summary>
    private sealed class NativeFloor
    {
        private readonly delegate* unmanaged<int, int, int> _start;
        private readonly delegate* unmanaged<long, double> _run;
        private readonly delegate* unmanaged<void> _stop;
        private readonly delegate* unmanaged<nint, int, int, int, long, double> _produce;
        private readonly delegate* unmanaged<nint, nint, long, double> _producePolled;

        public NativeFloor(nint library)
        {
            _start = (delegate* unmanaged<int, int, int>)NativeLibrary.GetExport(library, "slot_floor_start");
            _run = (delegate* unmanaged<long, double>)NativeLibrary.GetExport(library, "slot_floor_run");
            _stop = (delegate* unmanaged<void>)NativeLibrary.GetExport(library, "slot_floor_stop");
            _produce = (delegate* unmanaged<nint, int, int, int, long, double>)NativeLibrary.GetExport(library, "slot_produce");
            _producePolled = (delegate* unmanaged<nint, nint, long, double>)NativeLibrary.GetExport(library, "slot_produce_polled");
        }

        public int Start(int busy, int cpu) => _start(busy, cpu);

        public double Run(long iterations) => _run(iterations);

        public void Stop() => _stop();

        public double Produce(nint page, int mode, int toConsumer, int fromConsumer, long iterations) =>
            _produce(page, mode, toConsumer, fromConsumer, iterations);

        public double ProducePolled(nint page, nint port, long iterations) => _producePolled(page, port, iterations);
    }
}
