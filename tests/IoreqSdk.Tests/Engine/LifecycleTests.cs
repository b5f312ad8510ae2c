using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

[TestFixture]
public sealed class LifecycleTests
{
    private const ulong Mmio = 0xFEB0_0000;

    [Test]
    public void DisposeDestroysTheServerAndReleasesItsRanges()
    {
        using var xen = new SimulatedHypervisor();
        var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        server.AddDevice(new RegisterFile(RegionKind.Mmio, 0x1000, Mmio));
        server.Start();
        Assert.That(xen.Vcpu(0).ReadMmio(Mmio, 4), Is.Zero);
        server.Dispose();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(server.IsRunning, Is.False);
            Assert.That(xen.Vcpu(0).ReadMmio(Mmio, 4), Is.EqualTo(0xFFFF_FFFFUL), "nobody claims the range any more");
            Assert.That(xen.CreateIoreqServer(xen.Domain, BufferedIoreqMode.Off), Is.Zero, "slot 0 is free again");
        }
    }

    [Test]
    public void AFailedStartTearsDownWhatItBuilt()
    {
        using var xen = new SimulatedHypervisor();
        for (int i = 0; i < SimulatedHypervisor.MaxServers - 1; i++)
        {
            xen.CreateIoreqServer(xen.Domain, BufferedIoreqMode.Off);
        }

        // Two devices claiming overlapping ranges: the second claim fails after the server was created.
        var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        server.AddDevice(new RegisterFile(RegionKind.Mmio, 0x1000, Mmio));
        server.AddDevice(new RegisterFile(RegionKind.Mmio, 0x1000, Mmio + 0x800));
        Assert.That(server.Start, Throws.InvalidOperationException.With.Message.Contains("overlaps"));
        Assert.That(xen.CreateIoreqServer(xen.Domain, BufferedIoreqMode.Off), Is.EqualTo(7), "the failed server's slot was released");
        var ninth = Assert.Throws<HypervisorException>(() => xen.CreateIoreqServer(xen.Domain, BufferedIoreqMode.Off));
        Assert.That(ninth!.ErrorNumber, Is.EqualTo(Errno.ENOSPC));
    }

    [Test]
    public void XensRangeRulesAreEnforced()
    {
        using var xen = new SimulatedHypervisor();
        ushort id = xen.CreateIoreqServer(xen.Domain, BufferedIoreqMode.Off);
        xen.MapIoRange(xen.Domain, id, IoRangeType.Memory, 0x1000, 0x1FFF);
        var overlap = Assert.Throws<HypervisorException>(() => xen.MapIoRange(xen.Domain, id, IoRangeType.Memory, 0x1800, 0x27FF));
        for (ulong i = 1; i < SimulatedHypervisor.MaxRangesPerType; i++)
        {
            xen.MapIoRange(xen.Domain, id, IoRangeType.Memory, 0x10_0000 * i, (0x10_0000 * i) + 0xFFF);
        }

        var full = Assert.Throws<HypervisorException>(() => xen.MapIoRange(xen.Domain, id, IoRangeType.Memory, 0xF000_0000, 0xF000_0FFF));
        var arm = new SimulatedHypervisor(new SimulationOptions { Architecture = GuestArchitecture.Arm64 });
        var ring = Assert.Throws<HypervisorException>(() => arm.CreateIoreqServer(arm.Domain, BufferedIoreqMode.Atomic));
        arm.Dispose();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(overlap!.ErrorNumber, Is.EqualTo(Errno.EEXIST));
            Assert.That(full!.ErrorNumber, Is.EqualTo(Errno.ENOSPC));
            Assert.That(ring!.ErrorNumber, Is.EqualTo(Errno.EINVAL));
        }
    }

    // Xen's rangeset_remove_range: releasing part of a claimed range leaves the rest claimed on both sides, and a
    // release must lie inside one claimed range. The simulator's diagnostics count the claims Xen accepted only.
    [Test]
    public void ReleasingPartOfARangeKeepsTheRestClaimedAndOnlyAcceptedClaimsAreCounted()
    {
        using var xen = new SimulatedHypervisor();
        ushort id = xen.CreateIoreqServer(xen.Domain, BufferedIoreqMode.Off);
        xen.MapIoRange(xen.Domain, id, IoRangeType.Memory, 0x1000, 0x1FFF);
        xen.UnmapIoRange(xen.Domain, id, IoRangeType.Memory, 0x1400, 0x17FF);

        var below = Assert.Throws<HypervisorException>(() => xen.MapIoRange(xen.Domain, id, IoRangeType.Memory, 0x13FF, 0x13FF));
        var above = Assert.Throws<HypervisorException>(() => xen.MapIoRange(xen.Domain, id, IoRangeType.Memory, 0x1800, 0x1800));
        var acrossTheHole = Assert.Throws<HypervisorException>(() => xen.UnmapIoRange(xen.Domain, id, IoRangeType.Memory, 0x1300, 0x14FF));
        xen.MapIoRange(xen.Domain, id, IoRangeType.Memory, 0x1400, 0x17FF);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(below!.ErrorNumber, Is.EqualTo(Errno.EEXIST), "[0x1000, 0x13FF] is still claimed");
            Assert.That(above!.ErrorNumber, Is.EqualTo(Errno.EEXIST), "[0x1800, 0x1FFF] is still claimed");
            Assert.That(acrossTheHole!.ErrorNumber, Is.EqualTo(Errno.ENOENT), "a release inside no single claimed range");
            Assert.That(xen.Diagnostics.RangeClaims, Is.EqualTo(2), "the first claim and the hole's, not the refused ones");
        }
    }

    [Test]
    public void TheHighestEnabledServerWins()
    {
        var low = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        var high = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var xen = new SimulatedHypervisor();
        using var first = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        first.AddDevice(low);
        first.Start();
        using var second = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        second.AddDevice(high);
        second.Start();

        xen.Vcpu(0).WriteMmio(Mmio, 4, 1);
        xen.SetIoreqServerState(xen.Domain, second.Id, enabled: false);
        xen.Vcpu(0).WriteMmio(Mmio, 4, 2);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(high.Calls, Has.Count.EqualTo(1));
            Assert.That(low.Calls, Has.Count.EqualTo(1), "a disabled server is skipped");
        }
    }

    [Test]
    public void RemappingARegionMovesItInXenAndTheDispatcher()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.Arm64, 1, device);
        guest.Cpu.WriteMmio(Mmio, 4, 9);
        // Posted work runs on the server's loop thread, woken for it even with no request pending.
        device.Context.Post(() => device.Context.MapRegion(device.Region, 0x1000_0000));
        Assert.That(System.Threading.SpinWait.SpinUntil(() => device.Region.Address == 0x1000_0000UL, TimeSpan.FromSeconds(10)), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Cpu.ReadMmio(0x1000_0000, 4), Is.EqualTo(9UL));
            Assert.That(() => guest.Cpu.ReadMmio(Mmio, 4), Throws.TypeOf<GuestDataAbortException>());
            Assert.That(device.Region.Address, Is.EqualTo(0x1000_0000UL));
        }
    }

    [Test]
    public async System.Threading.Tasks.Task CancellationStopsAndDestroysTheServer()
    {
        using var xen = new SimulatedHypervisor();
        var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        server.AddDevice(new RegisterFile(RegionKind.Mmio, 0x1000, Mmio));
        using var cancel = new System.Threading.CancellationTokenSource();
        System.Threading.Tasks.Task run = server.RunAsync(cancel.Token);
        Assert.That(xen.Vcpu(0).ReadMmio(Mmio, 4), Is.Zero, "served while running");
        cancel.Cancel();
        await run;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(server.IsRunning, Is.False);
            Assert.That(xen.Vcpu(0).ReadMmio(Mmio, 4), Is.EqualTo(0xFFFF_FFFFUL), "the server is gone from Xen");
        }
    }
}
