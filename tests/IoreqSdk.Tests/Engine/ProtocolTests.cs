using System;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
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

/// <summary>The buffered ring's pointer arithmetic, INVALIDATE under load, and what Xen does to a misbehaving device model.</summary>
[TestFixture]
public sealed class ProtocolTests
{
    private const ulong Vga = 0xA0000;

    [Test]
    public void AtomicRingRebasesWhileTheServerDrainsAndLosesNothing()
    {
        var vga = new SequenceDevice(Vga);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, vga);
        const int Writes = 100_000;
        for (int i = 1; i <= Writes; i++)
        {
            // Alternate 4- and 8-byte writes: single slots and two-slot pairs wrap the 511-slot ring together.
            guest.Cpu.WriteMmio(Vga + (ulong)((i & 1) * 8), (i & 1) == 0 ? 4 : 8, (ulong)i);
        }

        guest.Cpu.ReadMmio(Vga, 4);   // synchronous: everything buffered before it is served first
        (uint read, uint write) = guest.Xen.RingPointers(guest.Server.Id);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vga.Received, Is.EqualTo(Writes));
            Assert.That(vga.OutOfOrder, Is.Zero);
            Assert.That(read, Is.EqualTo(write));
            Assert.That(read, Is.LessThan(2 * BufferedIoPage.SlotCount), "Xen keeps rebasing the pointers below 2 × 511");
            Assert.That(guest.Server.Statistics.BufferedEntries + guest.Cpu.CompletedRequests, Is.EqualTo(Writes + 1),
                "every write was either buffered or, with the ring full, sent synchronously");
        }
    }

    [Test]
    public void LegacyRingPointersCrossTwoToTheThirtyTwo()
    {
        var vga = new SequenceDevice(Vga);
        using var guest = new SimulatedGuest(new SimulationOptions(), s => { }, vga);
        guest.Server.Stop();
        using var legacy = new IoreqServer(guest.Xen, new IoreqServerOptions { Domain = guest.Xen.Domain, BufferedMode = BufferedIoreqMode.Legacy });
        var vga2 = new SequenceDevice(Vga);
        legacy.AddDevice(vga2);
        legacy.Start();
        guest.Xen.SetRingPointers(legacy.Id, uint.MaxValue - 300);

        // LEGACY pointers are never rebased, and 2^32 mod 511 = 32: slot indices jump at the wrap, so a backlog that
        // straddles it overwrites unconsumed slots 0-31 (the Xen bug ATOMIC mode fixed, and why the SDK defaults to
        // ATOMIC). With the backlog kept short by a synchronous request every 8 writes, the wrap itself is harmless.
        for (int i = 1; i <= 1000; i++)
        {
            guest.Cpu.WriteMmio(Vga, 8, (ulong)i);
            if (i % 8 == 0)
            {
                guest.Cpu.ReadMmio(Vga, 4);
            }
        }

        guest.Cpu.ReadMmio(Vga, 4);
        (uint read, uint write) = guest.Xen.RingPointers(legacy.Id);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vga2.Received, Is.EqualTo(1000));
            Assert.That(vga2.OutOfOrder, Is.Zero);
            Assert.That(read, Is.EqualTo(write));
            Assert.That(read, Is.LessThan(uint.MaxValue - 300), "the free-running pointers wrapped past 2^32");
        }
    }

    [Test]
    public void InvalidateUnderLoadAnswersEveryoneAndLeavesNoMapping()
    {
        var port = new RegisterFile(RegionKind.Port, 8, 0x3F8) { RecordCalls = false };
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 4, port);
        using var stop = new CancellationTokenSource();
        Task[] load = Enumerable.Range(1, 3).Select(v => Task.Factory.StartNew(() =>
        {
            SimulatedVcpu cpu = guest.Xen.Vcpu(v);
            int n = 0;
            while (!stop.IsCancellationRequested)
            {
                cpu.RepOuts(0x3F8, 1, (ulong)(0x10_000 + (v * 0x1000) + (n++ % 8 * 0x40_000)), 16);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();

        for (int i = 0; i < 200; i++)
        {
            guest.Xen.Vcpu(0).RemoveFrameAndInvalidate(0xF00 + (ulong)i);
        }

        stop.Cancel();
        Task.WaitAll(load);
        guest.Xen.Vcpu(0).RemoveFrameAndInvalidate(0xE00);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Server.Statistics.InvalidateRequests, Is.EqualTo(201));
            Assert.That(guest.Xen.OutstandingGuestMappings, Is.Zero);
            Assert.That(guest.Xen.CrashReason, Is.Null);
        }
    }

    [Test]
    public void ADeviceModelMovingTheStateBackwardsCrashesTheDomain()
    {
        // A rogue device model on the raw port: it answers INPROCESS, then moves the state back to READY.
        using var xen = new SimulatedHypervisor();
        ushort id = xen.CreateIoreqServer(xen.Domain, BufferedIoreqMode.Off);
        using IoreqServerPages pages = xen.AcquireIoreqServerPages(xen.Domain, id, buffered: false);
        xen.MapIoRange(xen.Domain, id, IoRangeType.Memory, 0x1000, 0x1FFF);
        xen.SetIoreqServerState(xen.Domain, id, enabled: true);
        var page = new SharedIoPage(pages.IoreqPage);
        using IEventChannel channel = xen.OpenEventChannel();
        uint local = channel.BindInterdomain(xen.Domain, page.Slot(0).VcpuEventPort);

        var rogue = Task.Run(() =>
        {
            channel.WaitPending(out _);
            page.WriteStateRelease(0, IoreqState.InProcess);
            channel.Notify(local);
            Thread.Sleep(50);
            page.WriteStateRelease(0, IoreqState.Ready);
            channel.Notify(local);
        });

        Assert.That(() => xen.Vcpu(0).ReadMmio(0x1000, 4), Throws.TypeOf<GuestCrashedException>().With.Message.Contains("Weird HVM ioreq state"));
        rogue.Wait();
        Assert.That(xen.CrashReason, Does.Contain("2 -> 1"));
        Assert.That(() => xen.Vcpu(0).ReadMmio(0x1000, 4), Throws.TypeOf<GuestCrashedException>(), "a crashed domain runs no more");
    }

    [Test]
    public void ArmGuestsRefusePortRegions()
    {
        using var xen = new SimulatedHypervisor(new SimulationOptions { Architecture = GuestArchitecture.Arm64 });
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        Assert.That(() => server.AddDevice(new RegisterFile(RegionKind.Port, 8, 0x3F8)),
            Throws.InvalidOperationException.With.Message.Contains("PIO aperture"));
    }

    [Test]
    public void TheMeterReportsRequestsByType()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, 0xFEB0_0000) { RecordCalls = false };
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        for (int i = 0; i < 5; i++)
        {
            guest.Cpu.ReadMmio(0xFEB0_0000, 4);
        }

        guest.Cpu.ReadMmio(0xDEAD_0000, 4);   // unclaimed: Xen's null handler, never reaches the server

        var seen = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == IoreqServerMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var t = tags.ToArray().ToDictionary(kv => kv.Key, kv => kv.Value);
            if ((int?)t["ioreq.server"] == guest.Server.Id && t.TryGetValue("ioreq.type", out object? type))
            {
                seen[$"{instrument.Name}/{type}"] = value;
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.That(seen["ioreq.requests/mmio"], Is.EqualTo(5));
    }

    /// <summary>Records each write's value and checks it is one more than the last.</summary>
    private sealed class SequenceDevice : DeviceModel
    {
        private ulong _last;

        public SequenceDevice(ulong address)
            : base("sequence") => AddMmioRegion(0x20000, address);

        public int Received { get; private set; }

        public int OutOfOrder { get; private set; }

        public override ulong Read(DeviceRegion region, ulong offset, int size) => _last;

        public override void Write(DeviceRegion region, ulong offset, int size, ulong value)
        {
            OutOfOrder += value == _last + 1 ? 0 : 1;
            _last = value;
            Received++;
        }
    }
}
