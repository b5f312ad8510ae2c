using System;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>
/// <see cref="IoreqServerOptions.BusyPoll"/>: the loop spins on the slots after a request, with the ports held masked
/// (the simulator's channel remembers a notification to a masked port and delivers it on unmask, as Linux's evtchn
/// device does), and must still answer every request, sleep again, stop, run posted work and keep the buffered ring's
/// order.
/// </summary>
[TestFixture]
public sealed class BusyPollTests
{
    private const ulong Mmio = 0xFEB0_0000;
    private const ulong Vga = 0xA0000;

    private static SimulatedGuest Guest(TimeSpan busyPoll, int vcpus, params IDeviceModel[] devices) =>
        new(GuestArchitecture.X86, vcpus, new IoreqServerOptions { BusyPoll = busyPoll }, devices);

    private static SimulatedGuest Guest(TimeSpan busyPoll, int vcpus, TimeSpan responseTimeout, params IDeviceModel[] devices)
    {
        SimulationOptions options = SimulatedGuest.Options(GuestArchitecture.X86, vcpus);
        options.ResponseTimeout = responseTimeout;
        return new SimulatedGuest(options, new IoreqServerOptions { BusyPoll = busyPoll }, null, devices);
    }

    [TestCase(-1)]
    [TestCase(1_000_001)]
    public void ABusyPollOutsideZeroToOneSecondIsRefusedWhereTheServerIsBuilt(int microseconds)
    {
        using var xen = new SimulatedHypervisor();
        var options = new IoreqServerOptions { Domain = xen.Domain, BusyPoll = TimeSpan.FromMicroseconds(microseconds) };
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new IoreqServer(xen, options).Dispose());
        Assert.That(error!.ParamName, Is.EqualTo(nameof(IoreqServerOptions.BusyPoll)));
        Assert.That(error.Message, Does.Contain("busy-polls from zero"));
    }

    [Test]
    public void ABurstIsServedByPollingAndItsNotificationsAreNotCountedAsSpurious()
    {
        const int Pairs = 1000;
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { RecordCalls = false };
        using SimulatedGuest guest = Guest(TimeSpan.FromSeconds(1), 1, device);
        for (int i = 0; i < Pairs; i++)
        {
            guest.Cpu.WriteMmio(Mmio + 8, 4, (ulong)i);
            Assert.That(guest.Cpu.ReadMmio(Mmio + 8, 4), Is.EqualTo((ulong)i));
        }

        // The first request woke the loop through its event; the next ones came while it spun (each within a second
        // of the one before). Their notifications were left pending on the masked port: delivered once the guest has
        // been quiet for the poll time and the loop unmasks it, they find nothing to serve.
        IoreqServerStatistics statistics = guest.Server.Statistics;
        Assert.That(Wait.Until(() => statistics.PolledEvents >= 1), Is.True, "the notifications pending on the masked port were delivered on unmask");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(statistics.MmioRequests, Is.EqualTo(2 * Pairs));
            Assert.That(statistics.PolledRequests, Is.InRange(1, (2 * Pairs) - 1), "found by spinning; never the first");
            Assert.That(statistics.PolledEvents, Is.LessThanOrEqualTo(statistics.PolledRequests), "one pending notification at most per polled request");
            Assert.That(statistics.SpuriousEvents, Is.Zero);
        }
    }

    [Test]
    public void TheWakingPortStaysMaskedWhileTheLoopSpinsSoABurstLeavesOneNotificationPending()
    {
        // Unmasked at once (as without busy polling), the port would take a delivery during the spin and a second one,
        // of what was pending, at the unmask after it: two late events for the burst instead of one.
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { RecordCalls = false };
        using SimulatedGuest guest = Guest(TimeSpan.FromSeconds(1), 1, device);
        for (int i = 0; i < 100; i++)
        {
            guest.Cpu.WriteMmio(Mmio, 4, (ulong)i);
        }

        IoreqServerStatistics statistics = guest.Server.Statistics;
        Assert.That(Wait.Until(() => statistics.PolledEvents >= 1), Is.True, "the spin ended and the port was unmasked");
        Thread.Sleep(200);   // time for a second delivery, were there one
        using (Assert.EnterMultipleScope())
        {
            Assert.That(statistics.PolledRequests, Is.EqualTo(99), "every write after the first, each well within a second of the one before");
            Assert.That(statistics.PolledEvents, Is.EqualTo(1));
        }
    }

    [Test]
    public void AfterTheGuestWasQuietTheLoopSleepsAndTheNextRequestStillWakesIt()
    {
        // A port left masked after polling would never deliver again: the next burst would time out (20 s).
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { RecordCalls = false };
        using SimulatedGuest guest = Guest(TimeSpan.FromMilliseconds(200), 1, device);
        for (int burst = 0; burst < 3; burst++)
        {
            // Read before the burst: a burst served in part from its events is still followed by one pending event.
            long polledEvents = guest.Server.Statistics.PolledEvents;
            for (int i = 0; i < 200; i++)
            {
                guest.Cpu.WriteMmio(Mmio, 4, (ulong)((burst << 16) | i));
            }

            Assert.That(Wait.Until(() => guest.Server.Statistics.PolledEvents > polledEvents), Is.True, $"burst {burst}: the loop unmasked its port and went back to sleep");
            Assert.That(guest.Cpu.ReadMmio(Mmio, 4), Is.EqualTo((ulong)((burst << 16) | 199)));
        }
    }

    [Test]
    public void AStopAskedForOnTheLoopEndsThePollBeforeAnotherRequestIsServed()
    {
        // The guest keeps a request coming; posted work, run by the spin, stops the server. Nothing may reach the device
        // after that, as without busy polling ("exit after the request it serves").
        int stopped = 0;
        int afterStop = 0;
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { RecordCalls = false };
        device.OnWrite = (_, _) =>
        {
            if (Volatile.Read(ref stopped) != 0)
            {
                Interlocked.Increment(ref afterStop);
            }
        };
        using SimulatedGuest guest = Guest(IoreqServerOptions.MaxBusyPoll, 1, TimeSpan.FromSeconds(2), device);
        using (var keepBusy = new GuestThatKeepsThePollBusy(guest.Cpu))
        {
            Assert.That(Wait.Until(() => guest.Server.Statistics.PolledRequests >= 100), Is.True, "the loop is polling");
            Assert.That(device.Context.TryPost(() =>
            {
                guest.Server.Stop();
                Volatile.Write(ref stopped, 1);
            }), Is.True);
            Assert.That(Wait.Until(() => !guest.Server.IsRunning), Is.True);
        }

        Assert.That(afterStop, Is.Zero);
    }

    [Test]
    public void PostedWorkRunsWhileTheGuestKeepsThePollBusy()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { RecordCalls = false };
        using SimulatedGuest guest = Guest(IoreqServerOptions.MaxBusyPoll, 1, device);
        using var keepBusy = new GuestThatKeepsThePollBusy(guest.Cpu);
        Assert.That(Wait.Until(() => guest.Server.Statistics.PolledRequests >= 100), Is.True, "the loop is polling");

        using var ran = new ManualResetEventSlim();
        int loopThread = -1;
        Assert.That(device.Context.TryPost(() =>
        {
            loopThread = Environment.CurrentManagedThreadId;
            ran.Set();
        }), Is.True);
        Assert.That(ran.Wait(TimeSpan.FromSeconds(30)), Is.True, "posted work is not starved by a guest that keeps the loop polling");
        Assert.That(loopThread, Is.Not.EqualTo(Environment.CurrentManagedThreadId), "it ran on the loop");
    }

    [Test]
    public void BufferedWritesBeforeAPolledRequestAreServedBeforeIt()
    {
        // x86's VGA window goes to the buffered ring. The loop, spinning, is held in posted work while the guest writes
        // there and then reads back synchronously: when the work returns, the spin finds the read READY with the write
        // still in the ring, and must drain the ring before it serves the read, as after an event.
        var vga = new RegisterFile(RegionKind.Mmio, 0x1000, Vga) { RecordCalls = false };
        using SimulatedGuest guest = Guest(TimeSpan.FromSeconds(1), 1, vga);
        for (int i = 1; i <= 3; i++)
        {
            guest.Cpu.ReadMmio(Vga, 4);   // the loop spins after this one, for up to a second
            using var holding = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            Assert.That(vga.Context.TryPost(() =>
            {
                holding.Set();
                release.Wait(TimeSpan.FromSeconds(30));
            }), Is.True);
            Assert.That(holding.Wait(TimeSpan.FromSeconds(30)), Is.True);

            ulong value = (ulong)(0x1000 * i);
            ulong read = 0;
            var cpu = new Thread(() =>
            {
                guest.Cpu.WriteMmio(Vga, 4, value);
                read = guest.Cpu.ReadMmio(Vga, 4);
            });
            cpu.Start();
            Thread.Sleep(100);   // the read is READY by now on any machine that runs the suite; were it not, the check is weaker, not wrong
            release.Set();
            cpu.Join();
            Assert.That(read, Is.EqualTo(value), $"round {i}: the buffered write was served before the read that followed it");
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Server.Statistics.BufferedEntries, Is.EqualTo(3), "the writes went through the ring");
            Assert.That(guest.Server.Statistics.PolledRequests, Is.GreaterThanOrEqualTo(1));
        }
    }

    [Test]
    public void FourVcpusPolledTogetherAreEachAnsweredWithTheirOwnData()
    {
        const int Vcpus = 4;
        const int PerVcpu = 5000;
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { RecordCalls = false };
        using SimulatedGuest guest = Guest(TimeSpan.FromSeconds(1), Vcpus, device);
        var cpus = new Task[Vcpus];
        for (int v = 0; v < Vcpus; v++)
        {
            int vcpu = v;
            cpus[v] = Task.Factory.StartNew(() =>
            {
                SimulatedVcpu cpu = guest.Xen.Vcpu(vcpu);
                for (int i = 0; i < PerVcpu; i++)
                {
                    cpu.WriteMmio(Mmio + (ulong)(vcpu * 8), 4, (ulong)i);
                    if (cpu.ReadMmio(Mmio + (ulong)(vcpu * 8), 4) != (ulong)i)
                    {
                        throw new InvalidOperationException($"vCPU {vcpu} read another value at {i}");
                    }
                }
            }, TaskCreationOptions.LongRunning);
        }

        Assert.That(Task.WaitAll(cpus, TimeSpan.FromMinutes(2)), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Server.Statistics.MmioRequests, Is.EqualTo(Vcpus * PerVcpu * 2));
            Assert.That(guest.Server.Statistics.PolledRequests, Is.GreaterThanOrEqualTo(1));
            Assert.That(guest.Server.Statistics.SpuriousEvents, Is.Zero);
        }
    }

    /// <summary>
    /// A vCPU on its own thread sending writes back to back until disposed, or until one is never answered (the server
    /// stopped with it in flight: the simulated vCPU gives up after its response timeout). Any other failure on the
    /// thread fails the test at the dispose.
    /// </summary>
    private sealed class GuestThatKeepsThePollBusy : IDisposable
    {
        private readonly Thread _thread;
        private volatile bool _done;
        private Exception? _failure;

        public GuestThatKeepsThePollBusy(SimulatedVcpu cpu)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    for (ulong i = 0; !_done; i++)
                    {
                        cpu.WriteMmio(Mmio, 4, i);
                    }
                }
                catch (TimeoutException)
                {
                }
                catch (Exception e)
                {
                    _failure = e;
                }
            })
            { IsBackground = true, Name = "busy guest" };
            _thread.Start();
        }

        public void Dispose()
        {
            _done = true;
            _thread.Join();
            Assert.That(_failure, Is.Null, "the guest's thread failed");
        }
    }
}
