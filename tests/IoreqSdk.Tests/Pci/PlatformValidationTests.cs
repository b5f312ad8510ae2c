using System;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using NUnit.Framework;
using NUnit.Framework.Constraints;

namespace IoreqSdk.Tests.Pci;

/// <summary>
/// A host bridge's layout is checked where it is built: each <see cref="Arm64Platform"/> property when it is set, the
/// layout as a whole when the <see cref="PciHostBridge"/> is created — never at the guest's first access.
/// </summary>
[TestFixture]
public sealed class PlatformValidationTests
{
    [Test]
    public void EachArm64WindowChecksItsOwnRulesWhenSet()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => new Arm64Platform { Memory = default }, ThrowsFor("Memory", "empty"));
            Assert.That(() => new Arm64Platform { Memory = new PciWindow(0xF800_0000, 0x1000_0000) }, ThrowsFor("Memory", "4 GiB"));
            Assert.That(() => new Arm64Platform { Memory = new PciWindow(0x2300_0800, 0x1000) }, ThrowsFor("Memory", "4 KiB"));
            Assert.That(() => new Arm64Platform { Prefetchable = new PciWindow(0x1_0000_0000, 0x1001) }, ThrowsFor("Prefetchable", "4 KiB"));
            Assert.That(() => new Arm64Platform { PioAperture = new PciWindow(0x3EFF_0000, 0x1000) }, ThrowsFor("PioAperture", "8 KiB to 64 KiB"));
            Assert.That(() => new Arm64Platform { PioAperture = new PciWindow(0x3EFF_0000, 0x2_0000) }, ThrowsFor("PioAperture", "8 KiB to 64 KiB"));
            Assert.That(() => new Arm64Platform { EcamBase = 0xFFFF_FFFF_FFFF_0000 }, ThrowsFor("EcamBase", "1 MiB"));
            Assert.That(() => new Arm64Platform { EcamBase = 0xFFFF_FFFF_FFF0_0000, BusCount = 2 }, ThrowsFor("EcamBase", "wrap"));
            Assert.That(() => new Arm64Platform { BusCount = 0 }, ThrowsFor("BusCount", "1 to 256"));
            Assert.That(() => new Arm64Platform { IntxSpiBase = uint.MaxValue }, ThrowsFor("IntxSpiBase", "32 to 1016"), "no wrap to SPI 0");
            Assert.That(() => new Arm64Platform { IntxSpiBase = 1017 }, ThrowsFor("IntxSpiBase", "32 to 1016"), "base + 3 past 1019");
            Assert.That(() => new Arm64Platform { IntxSpiBase = 31 }, ThrowsFor("IntxSpiBase", "32 to 1016"), "a PPI, not an SPI");
            Assert.That(() => new Arm64Platform { IntxSpiBase = 1016, Memory = new PciWindow(0xF000_0000, 0x1000_0000) }, Throws.Nothing, "the limits themselves are valid");
        }
    }

    [TestCase("EcamBase", 0x2300_0000UL, TestName = "OverlappingArm64WindowsAreRefusedWhenTheBridgeIsCreated(ECAM over the memory window)")]
    [TestCase("PioAperture", 0x1000_0000UL, TestName = "OverlappingArm64WindowsAreRefusedWhenTheBridgeIsCreated(PIO aperture over ECAM)")]
    [TestCase("Prefetchable", 0x2300_0000UL, TestName = "OverlappingArm64WindowsAreRefusedWhenTheBridgeIsCreated(prefetchable over the memory window)")]
    public void OverlappingArm64WindowsAreRefusedWhenTheBridgeIsCreated(string moved, ulong address)
    {
        Arm64Platform platform = moved switch
        {
            "EcamBase" => new Arm64Platform { EcamBase = address },
            "PioAperture" => new Arm64Platform { PioAperture = new PciWindow(address, 0x1_0000) },
            _ => new Arm64Platform { Prefetchable = new PciWindow(address, 0x1_0000_0000) },
        };
        using var xen = new SimulatedHypervisor(new SimulationOptions { Architecture = GuestArchitecture.Arm64 });
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });

        Assert.That(() => new PciHostBridge(server, platform), ThrowsFor(moved, "overlaps"), "the moved window is named");
    }

    [Test]
    public void BridgesOnOneServerTakeNeitherTheSameSegmentNorTheSameAddresses()
    {
        using var xen = new SimulatedHypervisor(new SimulationOptions { Architecture = GuestArchitecture.Arm64 });
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        _ = new PciHostBridge(server, new Arm64Platform(), segment: 0);
        var apart = new Arm64Platform
        {
            EcamBase = 0x2000_0000,
            Memory = new PciWindow(0x5000_0000, 0x1000_0000),
            Prefetchable = new PciWindow(0x3_0000_0000, 0x1_0000_0000),
            PioAperture = new PciWindow(0x3EFE_0000, 0x1_0000),
        };

        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => new PciHostBridge(server, apart, segment: 0), ThrowsFor("segment", "has a host bridge"));
            Assert.That(() => new PciHostBridge(server, new Arm64Platform(), segment: 1), ThrowsFor("platform", "overlaps"), "Xen's default layout twice");
            Assert.That(() => new PciHostBridge(server, apart, segment: 1), Throws.Nothing);
        }
    }

    [Test]
    public void AnX86BridgeLivesOnSegmentZero()
    {
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });

        Assert.That(() => new PciHostBridge(server, new X86Platform(), segment: 1), ThrowsFor("segment", "segment 0 only"));
    }

    [Test]
    public void ASimulatedGuestsShapeIsCheckedWhenItIsCreated()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => new SimulatedHypervisor(new SimulationOptions { Domain = 0 }), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("0 is dom0"));
            Assert.That(() => new SimulatedHypervisor(new SimulationOptions { Domain = 0x7FF0 }), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("reserved"));
            Assert.That(() => new SimulatedHypervisor(new SimulationOptions { RamBase = 0xFFFF_FFFF_FFFF_F000, RamSize = 0x2000 }), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("2^64"));
            Assert.That(() => new SimulatedHypervisor(new SimulationOptions { RamSize = 4UL << 30 }), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("2 GiB"));
            Assert.That(() => new SimulatedHypervisor(new SimulationOptions { ResponseTimeout = TimeSpan.Zero }), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("positive"));
        }
    }

    [Test]
    public void APortRegionPastPort0xFFFFIsRefusedWhereItIsDeclared()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => new IoreqSdk.Tests.Infrastructure.RegisterFile(IoreqSdk.Devices.RegionKind.Port, 0x20, 0xFFF0), ThrowsFor("size", "0 to 0xFFFF"));
            Assert.That(() => new IoreqSdk.Tests.Infrastructure.RegisterFile(IoreqSdk.Devices.RegionKind.Port, 0x2_0000, null), ThrowsFor("size", "0 to 0xFFFF"));
            Assert.That(() => new IoreqSdk.Tests.Infrastructure.RegisterFile(IoreqSdk.Devices.RegionKind.Port, 0x10, 0xFFF0), Throws.Nothing, "the last 16 ports");
        }
    }

    private static ContainsConstraint ThrowsFor(string property, string rule) =>
        Throws.InstanceOf<ArgumentException>().With.Property(nameof(ArgumentException.ParamName)).EqualTo(property).And.Message.Contains(rule);
}
