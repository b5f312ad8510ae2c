using System;
using System.Linq;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Pci;

/// <summary>
/// The seed's argument, tested: the same compiled device, I/O BAR included, enumerated and driven on x86 and Arm64,
/// sees exactly the same register traffic.
/// </summary>
[TestFixture]
public sealed class PlatformNeutralityTests
{
    private static readonly PciSbdf s_slot = new(0, 0, 3, 0);

    [Test]
    public void FirmwareFindsSizesAndAssignsEveryBarKind([Values] GuestArchitecture architecture)
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(architecture, bridge => bridge.AddDevice(device, 3));
        EnumeratedFunction function = guest.Function(s_slot);

        using (Assert.EnterMultipleScope())
        {
            Assert.That((function.VendorId, function.DeviceId, function.ClassCode), Is.EqualTo(((ushort)0x1af4, (ushort)0x10f0, 0xff0000u)));
            Assert.That(function.Bars.Select(b => (b.Index, b.Kind, b.Size)), Is.EqualTo(new[]
            {
                (0, PciBarKind.Io, 32UL),
                (1, PciBarKind.Memory32, 4096UL),
                (2, PciBarKind.Memory64, 1UL << 20),
                (6, PciBarKind.ExpansionRom, 0x800UL),
            }));
            Assert.That(function.Bars.All(b => b.BusAddress % b.Size == 0), Is.True, "naturally aligned");
            Assert.That(guest.Platform.PrefetchableWindow.Contains(function.Bars[2].BusAddress, function.Bars[2].Size), Is.True);
            Assert.That(device.Mmio64.Address, Is.EqualTo(function.Bars[2].BusAddress), "the device decodes where firmware put it");
            Assert.That(device.IoBar.Address, Is.EqualTo(function.Bars[0].BusAddress));
            Assert.That(guest.Read(function.Bars[3], 0, 2), Is.EqualTo(0xAA55UL), "the expansion ROM reads back its image");
            Assert.That(guest.Read(function.Bars[3], 0x10, 1), Is.EqualTo(0xFFUL));
        }

        if (architecture == GuestArchitecture.Arm64)
        {
            EnumeratedFunction hostBridge = guest.Function(new PciSbdf(0, 0, 0, 0));
            Assert.That(hostBridge.ClassCode >> 8, Is.EqualTo(0x0600), "00:00.0 is the host bridge");
        }
    }

    [Test]
    public void TheSameDeviceSeesTheSameTrafficOnBothArchitectures()
    {
        var onX86 = new ProbeDevice();
        var onArm = new ProbeDevice();
        using (var x86 = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(onX86, 3)))
        {
            DriveLikeADriver(x86);
        }

        using (var arm = new PciGuest(GuestArchitecture.Arm64, b => b.AddDevice(onArm, 3)))
        {
            DriveLikeADriver(arm);
        }

        Assert.That(onX86.Traffic, Is.Not.Empty);
        Assert.That(onArm.Traffic, Is.EqualTo(onX86.Traffic), "the device cannot tell the architectures apart");
    }

    [Test]
    public void TwoHostBridgesServeOneGuest()
    {
        using var xen = new SimulatedHypervisor(new SimulationOptions { Architecture = GuestArchitecture.Arm64 });
        using var server = new IoreqSdk.Server.IoreqServer(xen, new IoreqSdk.Server.IoreqServerOptions { Domain = xen.Domain });
        var first = new Arm64Platform();
        var second = new Arm64Platform
        {
            EcamBase = 0x2000_0000,
            Memory = new PciWindow(0x5000_0000, 0x1000_0000),
            Prefetchable = new PciWindow(0x3_0000_0000, 0x1_0000_0000),
            PioAperture = new PciWindow(0x3EFE_0000, 0x1_0000),
            IntxSpiBase = 48,
        };
        var a = new ProbeDevice();
        var b = new ProbeDevice();
        new PciHostBridge(server, first, segment: 0).AddDevice(a, 1);
        new PciHostBridge(server, second, segment: 1).AddDevice(b, 1);
        server.Start();
        var fa = SimulatedFirmware.EnumeratePci(xen.Vcpu(0), first, 0).Single(f => f.Address.Device == 1);
        var fb = SimulatedFirmware.EnumeratePci(xen.Vcpu(0), second, 1).Single(f => f.Address.Device == 1);

        xen.Vcpu(0).WriteMmio(fa.Bars[1].CpuAddress, 4, 0xA);
        xen.Vcpu(0).WriteMmio(fb.Bars[1].CpuAddress, 4, 0xB);
        xen.Vcpu(0).WriteMmio(fb.Bars[0].CpuAddress + 4, 1, 0xC);   // I/O BAR through the second aperture
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fb.Address.Segment, Is.EqualTo(1));
            Assert.That(a.Traffic.Where(t => t.Write).Select(t => t.Value), Is.EqualTo(new[] { 0xAUL }));
            Assert.That(b.Traffic.Where(t => t.Write).Select(t => t.Value), Is.EqualTo(new[] { 0xBUL, 0xCUL }));
            Assert.That(b.Address, Is.EqualTo(new PciSbdf(1, 0, 1, 0)));
        }
    }

    private static void DriveLikeADriver(PciGuest guest)
    {
        AssignedBar io = guest.Bar(s_slot, 0);
        AssignedBar mmio = guest.Bar(s_slot, 1);
        AssignedBar mmio64 = guest.Bar(s_slot, 2);
        guest.Write(io, 0, 1, 0x5A);
        guest.Write(io, 2, 2, 0x1234);
        Assert.That(guest.Read(io, 2, 2), Is.EqualTo(0x1234UL));
        guest.Read(io, 4, 4);
        guest.Write(mmio, 0x10, 4, 0xCAFE_BABE);
        Assert.That(guest.Read(mmio, 0x10, 4), Is.EqualTo(0xCAFE_BABEUL));
        guest.Read(mmio, 0x12, 2);
        guest.Write(mmio64, 0x100, 8, 0x0102_0304_0506_0708);
        Assert.That(guest.Read(mmio64, 0x100, 8), Is.EqualTo(0x0102_0304_0506_0708UL));
    }
}
