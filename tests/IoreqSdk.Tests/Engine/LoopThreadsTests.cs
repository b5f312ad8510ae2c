using System;
using System.Collections.Concurrent;
using System.Linq;
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
/// <see cref="IoreqServerOptions.LoopThreads"/>: vCPU n's requests to a concurrent region are served on loop n % loops
/// (loop 0 the event loop), in parallel; everything else a request loop hands to the event loop, which answers on the
/// request loop's port; counters add up across loops; faults and stops on a request loop are contained as on the
/// event loop.
/// </summary>
[TestFixture]
public sealed class LoopThreadsTests
{
    private const ulong Concurrent = 0xFEB0_0000;
    private const ulong Plain = 0xFEB1_0000;
    private const ulong Vga = 0xA0000;

    private static SimulatedGuest Guest(int vcpus, int loops, params IDeviceModel[] devices) =>
        new(GuestArchitecture.X86, vcpus, new IoreqServerOptions { LoopThreads = loops }, devices);

    private static SimulatedGuest Guest(int vcpus, int loops, IDeviceModel device, TimeSpan busyPoll) =>
        new(GuestArchitecture.X86, vcpus, new IoreqServerOptions { LoopThreads = loops, BusyPoll = busyPoll }, device);

    [TestCase(0)]
    [TestCase(IoreqServerOptions.MaxLoopThreads + 1)]
    public void ALoopCountOutsideOneToTheSlotCountIsRefusedWhereTheServerIsBuilt(int loops)
    {
        using var xen = new SimulatedHypervisor();
        var options = new IoreqServerOptions { Domain = xen.Domain, LoopThreads = loops };
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new IoreqServer(xen, options).Dispose());
        Assert.That(error!.ParamName, Is.EqualTo(nameof(IoreqServerOptions.LoopThreads)));
        Assert.That(error.Message, Does.Contain("1 to 128 loop threads"));
    }

    [Test]
    public void WithBusyPollingARequestLoopSpinsOnItsOwnVcpus()
    {
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(2, 2, device, TimeSpan.FromMilliseconds(200));
        SimulatedVcpu cpu = guest.Xen.Vcpu(1);
        for (ulong i = 0; i < 50; i++)
        {
            cpu.WriteMmio(Concurrent + 0x40, 4, i);
            Assert.That(cpu.ReadMmio(Concurrent + 0x40, 4), Is.EqualTo(i));
        }

        IoreqServerStatistics requestLoop = guest.Server.Statistics.Loops[0];
        using (Assert.EnterMultipleScope())
        {
            // Each request after the first comes while the request loop still spins after the one before it.
            Assert.That(requestLoop.PolledRequests, Is.GreaterThan(0), "the request loop's spin found vCPU 1's requests");
            Assert.That(requestLoop.MmioRequests, Is.EqualTo(100), "all served on the request loop");
            Assert.That(guest.Server.Statistics.HandedOffRequests, Is.Zero);
            Assert.That(guest.Server.Statistics.SpuriousEvents, Is.Zero);
        }
    }

    [Test]
    public void WithBusyPollingTheEventLoopsSpinServesWhatTheRequestLoopHandsOver()
    {
        // The event loop spins after vCPU 0's request; vCPU 1's plain-region requests are handed over meanwhile. Its
        // spin reads no wake-up, so it must look at the hand-offs itself, or each would wait for the spin to end.
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(2, 2, device, TimeSpan.FromMilliseconds(500));
        guest.Xen.Vcpu(0).WriteMmio(Plain, 4, 0);
        SimulatedVcpu cpu = guest.Xen.Vcpu(1);
        for (ulong i = 1; i <= 20; i++)
        {
            cpu.WriteMmio(Plain + 0x10, 4, i);
            Assert.That(cpu.ReadMmio(Plain + 0x10, 4), Is.EqualTo(i));
        }

        IoreqServerStatistics all = guest.Server.Statistics;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(all.HandedOffRequests, Is.EqualTo(40));
            Assert.That(all.PolledRequests - all.Loops[0].PolledRequests, Is.GreaterThan(0), "the event loop's spin served hand-offs");
            Assert.That(device.PlainWrites, Is.EqualTo(20));
            Assert.That(all.SpuriousEvents, Is.Zero);
        }
    }

    [Test]
    public void ARegionIsDeclaredConcurrentOnlyBeforeItsDeviceJoinsAServerAndOnlyByItsOwnDevice()
    {
        var device = new LoopDevice();
        var other = new LoopDevice();
        Assert.That(() => device.Declare(other.ConcurrentRegion), Throws.ArgumentException.With.Message.Contains("belongs to another device"));
        using SimulatedGuest guest = Guest(1, 1, device);
        Assert.That(() => device.Declare(device.PlainRegion), Throws.InvalidOperationException.With.Message.Contains("before the device joins a server"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.ConcurrentRegion.IsConcurrent, Is.True);
            Assert.That(device.PlainRegion.IsConcurrent, Is.False);
        }
    }

    [Test]
    public void EachVcpusConcurrentAccessesRunOnItsOwnLoopAndInParallel()
    {
        const int Vcpus = 4;
        const int Rounds = 500;
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(Vcpus, 2, device);

        // vCPU 0 (the event loop's) and vCPU 1 (the request loop's) each wait in the handler for the other: only two
        // loops serving them at once let both waits end before their timeout.
        using var inHandler = new CountdownEvent(2);
        bool[] met = new bool[2];
        device.OnConcurrentRead = offset =>
        {
            if (offset == 0x800)
            {
                inHandler.Signal();
                met[Thread.CurrentThread.Name!.EndsWith("loop 1", StringComparison.Ordinal) ? 1 : 0] = inHandler.Wait(TimeSpan.FromSeconds(5));
            }
        };

        // Two threads of their own (not the thread pool, which may start the second only after the first timed out).
        Thread[] cpus = [new(() => guest.Xen.Vcpu(0).ReadMmio(Concurrent + 0x800, 4)), new(() => guest.Xen.Vcpu(1).ReadMmio(Concurrent + 0x800, 4))];
        foreach (Thread thread in cpus)
        {
            thread.Start();
        }

        foreach (Thread thread in cpus)
        {
            thread.Join();
        }

        device.OnConcurrentRead = null;
        Assert.That(met, Is.EqualTo(new[] { true, true }), "both handlers ran at the same time");

        var failures = new ConcurrentQueue<string>();
        Parallel.For(0, Vcpus, new ParallelOptions { MaxDegreeOfParallelism = Vcpus }, vcpu =>
        {
            SimulatedVcpu cpu = guest.Xen.Vcpu(vcpu);
            for (int i = 0; i < Rounds; i++)
            {
                ulong value = ((ulong)vcpu << 24) | (uint)i;
                cpu.WriteMmio(Concurrent + (ulong)(8 * vcpu), 4, value);
                ulong read = cpu.ReadMmio(Concurrent + (ulong)(8 * vcpu), 4);
                if (read != value)
                {
                    failures.Enqueue($"vCPU {vcpu} round {i}: 0x{read:x}");
                }
            }
        });

        using (Assert.EnterMultipleScope())
        {
            Assert.That(failures, Is.Empty);
            for (int vcpu = 0; vcpu < Vcpus; vcpu++)
            {
                Assert.That(device.ThreadsOf((ulong)(8 * vcpu)), Has.Length.EqualTo(1), $"vCPU {vcpu}: one loop served it");
            }

            Assert.That(device.ThreadsOf(8).Single(), Is.Not.EqualTo(device.ThreadsOf(0).Single()), "vCPU 1 on the request loop, vCPU 0 on the event loop");
            Assert.That(device.ThreadsOf(24).Single(), Is.EqualTo(device.ThreadsOf(8).Single()), "vCPUs 1 and 3 on the same request loop");
            Assert.That(device.ThreadsOf(16).Single(), Is.EqualTo(device.ThreadsOf(0).Single()), "vCPUs 0 and 2 on the event loop");
            Assert.That(guest.Server.Statistics.MmioRequests, Is.EqualTo(2 + (2 * Vcpus * Rounds)));
            Assert.That(guest.Server.Statistics.HandedOffRequests, Is.Zero);
        }
    }

    [Test]
    public void VcpusAreSpreadOverTheLoopsAndTheEventLoopKeepsVcpuZero()
    {
        const int Vcpus = 6;
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(Vcpus, 3, device);
        int eventLoop = LoopThreadOf(guest, device);
        for (int vcpu = 0; vcpu < Vcpus; vcpu++)
        {
            guest.Xen.Vcpu(vcpu).WriteMmio(Concurrent + (ulong)(8 * vcpu), 4, (ulong)vcpu);
        }

        int[] threads = Enumerable.Range(0, Vcpus).Select(v => device.ThreadsOf((ulong)(8 * v)).Single()).ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(threads[0], Is.EqualTo(eventLoop));
            Assert.That(threads[3], Is.EqualTo(eventLoop), "vCPU 3 % 3 = 0");
            Assert.That(threads[1], Is.EqualTo(threads[4]).And.Not.EqualTo(eventLoop));
            Assert.That(threads[2], Is.EqualTo(threads[5]).And.Not.EqualTo(eventLoop).And.Not.EqualTo(threads[1]));
            Assert.That(guest.Server.Statistics.MmioRequests, Is.EqualTo(Vcpus + 1), "every loop's counters are added up (and the event loop's first write)");
            Assert.That(guest.Server.Statistics.HandedOffRequests, Is.Zero);
        }
    }

    [Test]
    public void MoreLoopsThanVcpusStartOnlyOnePerVcpu()
    {
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(2, 8, device);
        guest.Xen.Vcpu(0).WriteMmio(Concurrent, 4, 1);
        guest.Xen.Vcpu(1).WriteMmio(Concurrent + 8, 4, 2);
        string prefix = $"ioreq d{guest.Server.Domain} s{guest.Server.Id} loop ";
        Assert.That(device.ThreadNames.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Distinct(), Is.EquivalentTo(new[] { prefix + "1" }));
    }

    [Test]
    public void WhatARequestLoopMayNotServeIsHandedToTheEventLoopAndAnsweredOnTheVcpusPort()
    {
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(2, 2, device);
        int eventLoop = LoopThreadOf(guest, device);
        SimulatedVcpu cpu = guest.Xen.Vcpu(1);

        cpu.WriteMmio(Plain + 0x10, 4, 0xABCD);
        ulong plain = cpu.ReadMmio(Plain + 0x10, 4);

        // A rep form and INVALIDATE go to the event loop too (its dispatcher serves every form; it owns guest memory).
        cpu.RepStos(Concurrent + 0x100, 4, 0x5A5A, 4);
        ulong repeated = cpu.ReadMmio(Concurrent + 0x10C, 4);
        cpu.RemoveFrameAndInvalidate(0x100);

        IoreqServerStatistics statistics = guest.Server.Statistics;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plain, Is.EqualTo(0xABCD));
            Assert.That(device.ThreadsOf(Plain + 0x10), Is.EquivalentTo(new[] { eventLoop }), "the region not declared concurrent ran on the event loop");
            Assert.That(device.ThreadsOf(0x100), Is.EquivalentTo(new[] { eventLoop }), "the rep form ran on the event loop");
            Assert.That(repeated, Is.EqualTo(0x5A5A));
            Assert.That(device.ThreadsOf(0x10C), Has.Length.EqualTo(2), "the single read after it on the request loop");
            Assert.That(statistics.InvalidateRequests, Is.EqualTo(1));
            Assert.That(statistics.HandedOffRequests, Is.EqualTo(4), "2 plain, the rep, INVALIDATE");
            Assert.That(statistics.SpuriousEvents, Is.Zero);
        }
    }

    [Test]
    public void ARequestBehindBufferedWritesIsServedAfterThem()
    {
        // x86's VGA window goes to the buffered ring. The event loop is held by vCPU 0's request while vCPU 1 writes
        // there and reads back: the request loop must not serve the read before the ring's write (it hands it over).
        var vga = new LoopDevice(Vga);
        using SimulatedGuest guest = Guest(2, 2, vga);
        using var holding = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        vga.OnPlainRead = () =>
        {
            holding.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        };
        var held = Task.Run(() => guest.Xen.Vcpu(0).ReadMmio(vga.PlainAddress, 4));
        Assert.That(holding.Wait(TimeSpan.FromSeconds(30)), Is.True);

        ulong read = 0;
        var cpu = Task.Run(() =>
        {
            guest.Xen.Vcpu(1).WriteMmio(Vga + 8, 4, 0x1234);
            read = guest.Xen.Vcpu(1).ReadMmio(Vga + 8, 4);
        });
        // Deterministic: the read is known to be with the event loop (handed over) before the event loop is let go.
        bool handedOver = Wait.Until(() => guest.Server.Statistics.HandedOffRequests == 1);
        Thread.Sleep(50);
        bool answeredWhileHeld = cpu.IsCompleted;
        release.Set();
        Assert.That(Task.WaitAll([held, cpu], TimeSpan.FromSeconds(30)), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(handedOver, Is.True, "the request loop handed the read over while the write waited in the ring");
            Assert.That(answeredWhileHeld, Is.False, "the read waited for the event loop, which drains the ring first");
            Assert.That(read, Is.EqualTo(0x1234));
            Assert.That(guest.Server.Statistics.BufferedEntries, Is.EqualTo(1), "the write went through the ring");
            Assert.That(guest.Server.Statistics.HandedOffRequests, Is.EqualTo(1));
        }
    }

    [Test]
    public void AConcurrentHandlersExceptionIsContainedOnItsLoop()
    {
        var device = new LoopDevice { ThrowAt = 0x20 };
        var logs = new Xenstore.CapturedLogs();
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 2, new IoreqServerOptions { LoopThreads = 2, LoggerFactory = logs }, device);
        int eventLoop = LoopThreadOf(guest, device);
        SimulatedVcpu cpu = guest.Xen.Vcpu(1);
        ulong faulted = cpu.ReadMmio(Concurrent + 0x20, 4);
        cpu.WriteMmio(Concurrent + 0x20, 4, 7);
        cpu.WriteMmio(Concurrent + 0x28, 4, 9);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(faulted, Is.EqualTo(0xFFFF_FFFF), "answered as unclaimed");
            Assert.That(device.ThreadsOf(0x20).Single(), Is.Not.EqualTo(eventLoop), "the fault was on the request loop");
            Assert.That(guest.Server.Statistics.DeviceFaults, Is.EqualTo(2));
            Assert.That(logs.Lines, Has.Some.Contains(" threw on request loop 1 (contained"), "the log names the loop the fault was on");
            Assert.That(logs.Lines, Has.None.Contains(" threw on " + LoopDiagnostics.EventLoopName));
            Assert.That(cpu.ReadMmio(Concurrent + 0x28, 4), Is.EqualTo(9), "the loop goes on");
            Assert.That(guest.Server.IsRunning, Is.True);
        }
    }

    [Test]
    public void AConcurrentHandlerThatDrivesAnInterruptLineIsRefusedAndContained()
    {
        var device = new LoopDevice();
        var levels = new ConcurrentQueue<bool>();
        InterruptLine line = InterruptLine.Create("test line", levels.Enqueue);
        device.OnConcurrentRead = offset => line.Set(offset == 0x50);
        device.OnPlainRead = () => line.Set(true);
        using SimulatedGuest guest = Guest(2, 2, device);

        ulong refused = guest.Xen.Vcpu(1).ReadMmio(Concurrent + 0x50, 4);
        bool assertedFromTheRequestLoop = line.IsAsserted;
        guest.Xen.Vcpu(1).ReadMmio(Plain, 4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(refused, Is.EqualTo(0xFFFF_FFFF), "the handler's Set threw: a contained fault");
            Assert.That(assertedFromTheRequestLoop, Is.False);
            Assert.That(guest.Server.Statistics.DeviceFaults, Is.EqualTo(1));
            Assert.That(line.IsAsserted, Is.True, "from the event loop (the plain region, handed over) the line is driven");
            Assert.That(levels, Is.EqualTo(new[] { true }));
        }
    }

    [Test]
    public void AStopFromAConcurrentHandlerAnswersItsRequestAndTearsTheServerDown()
    {
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(2, 2, device);
        string? stoppedOn = null;
        device.OnConcurrentRead = offset =>
        {
            if (offset == 0x30)
            {
                stoppedOn = Thread.CurrentThread.Name;
                guest.Server.Stop();
            }
        };

        ulong read = guest.Xen.Vcpu(1).ReadMmio(Concurrent + 0x30, 4);
        Assert.That(read, Is.Zero, "answered");
        Assert.That(stoppedOn, Does.EndWith(" loop 1"), "the stop was asked for on the request loop");
        Assert.That(Wait.Until(() => guest.Server.IsTornDown), Is.True, "the event loop joined the request loop and tore down");
        Assert.That(guest.Server.IsRunning, Is.False);
    }

    [Test]
    public void ADisposeFromAConcurrentHandlerAnswersItsRequestAndTearsTheServerDown()
    {
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(2, 2, device);
        string? disposedOn = null;
        Exception? thrown = null;
        device.OnConcurrentRead = offset =>
        {
            if (offset == 0x30)
            {
                disposedOn = Thread.CurrentThread.Name;
                try
                {
                    guest.Server.Dispose();
                }
                catch (Exception e)
                {
                    thrown = e;
                }
            }
        };

        ulong read = guest.Xen.Vcpu(1).ReadMmio(Concurrent + 0x30, 4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(read, Is.Zero, "answered");
            Assert.That(disposedOn, Does.EndWith(" loop 1"), "disposed on the request loop");
            Assert.That(thrown, Is.Null, "Dispose only asked for the stop (joining its own loop would deadlock)");
            Assert.That(Wait.Until(() => guest.Server.IsTornDown), Is.True, "the event loop joined the request loop and tore down");
            Assert.That(guest.Xen.CreateIoreqServer(guest.Xen.Domain, BufferedIoreqMode.Off), Is.Zero, "the server was destroyed in the hypervisor");
        }
    }

    [Test]
    public void AnEventForASlotWithTheEventLoopIsSpuriousAndTheRequestIsServedOnce()
    {
        // The event loop is held by vCPU 0's request while vCPU 1's plain write waits with it (handed over, still
        // READY); a stray event on vCPU 1's port then wakes the request loop, which must leave the slot alone.
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(2, 2, device);
        using var holding = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        device.OnPlainRead = () =>
        {
            holding.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        };
        var held = Task.Run(() => guest.Xen.Vcpu(0).ReadMmio(Plain, 4));
        Assert.That(holding.Wait(TimeSpan.FromSeconds(30)), Is.True);
        var write = Task.Run(() => guest.Xen.Vcpu(1).WriteMmio(Plain + 0x10, 4, 0x77));
        bool handedOver = Wait.Until(() => guest.Server.Statistics.HandedOffRequests == 1);

        guest.Xen.RaiseSpuriousEvent(guest.Server.Id, 1);
        bool spurious = Wait.Until(() => guest.Server.Statistics.SpuriousEvents == 1);
        long handedOffWhileHeld = guest.Server.Statistics.HandedOffRequests;
        release.Set();
        Assert.That(Task.WaitAll([held, write], TimeSpan.FromSeconds(30)), Is.True);
        device.OnPlainRead = null;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(handedOver, Is.True);
            Assert.That(spurious, Is.True, "the request loop counted the event as spurious");
            Assert.That(handedOffWhileHeld, Is.EqualTo(1), "and did not take the slot up again");
            Assert.That(device.PlainWrites, Is.EqualTo(1), "the write was served once, by the event loop");
            Assert.That(guest.Xen.Vcpu(1).ReadMmio(Plain + 0x10, 4), Is.EqualTo(0x77), "the vCPU's next request is served");
            Assert.That(guest.Server.IsRunning, Is.True);
        }
    }

    [Test]
    public void ARequestLoopWhoseChannelFailsStopsTheServer()
    {
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(2, 2, device);
        Assert.That(guest.Xen.Vcpu(1).ReadMmio(Concurrent, 4), Is.Zero);

        guest.Xen.FailEventChannelOf(guest.Server.Id, 1);
        using (Assert.EnterMultipleScope())
        {
            // As when the event loop's own channel fails: vCPU 1 can no longer be served, so nothing of the server stays.
            Assert.That(Wait.Until(() => guest.Server.IsTornDown), Is.True, "the server tore down");
            Assert.That(guest.Server.IsRunning, Is.False);
            Assert.That(guest.Xen.CreateIoreqServer(guest.Xen.Domain, BufferedIoreqMode.Off), Is.Zero, "the server was destroyed in the hypervisor");
        }
    }

    [Test]
    public void AServerWithSeveralLoopsStopsFromOutsideAndStartsAgain()
    {
        var device = new LoopDevice();
        using SimulatedGuest guest = Guest(4, 4, device);
        for (int run = 0; run < 3; run++)
        {
            for (int vcpu = 0; vcpu < 4; vcpu++)
            {
                guest.Xen.Vcpu(vcpu).WriteMmio(Concurrent + (ulong)(8 * vcpu), 4, (ulong)(run + 1));
            }

            guest.Server.Stop();
            Assert.That(guest.Server.IsTornDown, Is.True);
            if (run < 2)
            {
                guest.Server.Start();
            }
        }

        Assert.That(guest.Server.Statistics.MmioRequests, Is.EqualTo(12), "the request loops' counters outlive their runs");
    }

    private static int LoopThreadOf(SimulatedGuest guest, LoopDevice device)
    {
        guest.Xen.Vcpu(0).WriteMmio(Plain, 4, 0);
        return device.ThreadsOf(Plain).Single();
    }

    /// <summary>A region declared concurrent (8-byte registers, one a vCPU) and one that is not; records which thread served what.</summary>
    private sealed class LoopDevice : DeviceModel
    {
        private readonly long[] _registers = new long[512];
        private readonly ConcurrentDictionary<ulong, ConcurrentDictionary<int, bool>> _threads = new();
        private int _plainWrites;

        public LoopDevice(ulong address = Concurrent)
            : base("loops")
        {
            ConcurrentRegion = AddMmioRegion(0x1000, address, AccessWidths.DWord);
            PlainAddress = address == Concurrent ? Plain : address + 0x1000;
            PlainRegion = AddMmioRegion(0x1000, PlainAddress, AccessWidths.DWord);
            ServeConcurrently(ConcurrentRegion);
        }

        public DeviceRegion ConcurrentRegion { get; }

        public DeviceRegion PlainRegion { get; }

        public ulong PlainAddress { get; }

        public Action<ulong>? OnConcurrentRead { get; set; }

        public Action? OnPlainRead { get; set; }

        public ulong? ThrowAt { get; set; }

        public ConcurrentBag<string> ThreadNames { get; } = new();

        public int PlainWrites => Volatile.Read(ref _plainWrites);

        public void Declare(DeviceRegion region) => ServeConcurrently(region);

        /// <summary>The threads that served an access at <paramref name="key"/>: an offset in the concurrent region, an address in the plain one.</summary>
        public int[] ThreadsOf(ulong key) => _threads.TryGetValue(key, out var threads) ? threads.Keys.ToArray() : [];

        public override ulong Read(DeviceRegion region, ulong offset, int size)
        {
            Record(region, offset);
            if (region == PlainRegion)
            {
                OnPlainRead?.Invoke();
                return offset == 0x10 ? (ulong)Interlocked.Read(ref _registers[511]) : 0;
            }

            OnConcurrentRead?.Invoke(offset);
            return ThrowAt == offset ? throw new InvalidOperationException("device bug") : (ulong)Interlocked.Read(ref _registers[offset / 8]);
        }

        public override void Write(DeviceRegion region, ulong offset, int size, ulong value)
        {
            Record(region, offset);
            if (ThrowAt == offset)
            {
                throw new InvalidOperationException("device bug");
            }

            if (region == ConcurrentRegion)
            {
                Interlocked.Exchange(ref _registers[offset / 8], (long)value);
            }
            else if (offset == 0x10)
            {
                Interlocked.Increment(ref _plainWrites);
                Interlocked.Exchange(ref _registers[511], (long)value);
            }
        }

        private void Record(DeviceRegion region, ulong offset)
        {
            ulong key = region == PlainRegion ? PlainAddress + offset : offset;
            _threads.GetOrAdd(key, _ => new()).TryAdd(Environment.CurrentManagedThreadId, true);
            ThreadNames.Add(Thread.CurrentThread.Name ?? "");
        }
    }
}
