using System;
using System.Linq;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Simulation;

/// <summary>The public harness: a device on a simulated guest in two lines, observed the same way on every platform.</summary>
[TestFixture]
public sealed class SimulatedPciGuestTests
{
    [Test]
    public void ADeviceIsOnAGuestInTwoLines([Values] GuestArchitecture architecture)
    {
        var probe = new ProbeDevice();
        using var guest = SimulatedPciGuest.Create(probe, architecture);

        guest.WriteBar(1, 8, 4, 0xABCD);
        guest.WriteBar(0, 4, 4, 0x1234);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Address, Is.EqualTo(new IoreqSdk.Abi.PciSbdf(0, 0, SimulatedPciGuest.DefaultDeviceNumber, 0)));
            Assert.That(guest.ReadConfig(PciConfigRegisters.VendorId, 2), Is.EqualTo(0x1af4u), "configuration space as the driver reads it");
            Assert.That(guest.Function.Bars.Select(b => b.Index), Is.EquivalentTo(new[] { 0, 1, 2, 6 }), "every BAR assigned by the firmware");
            Assert.That(guest.ReadBar(1, 8, 4), Is.EqualTo(0xABCDUL), "a memory BAR");
            Assert.That(guest.ReadBar(0, 4, 4), Is.EqualTo(0x1234UL), "an I/O BAR, through ports or the PIO aperture alike");
            Assert.That(probe.Traffic.Any(t => t.Bar == 1 && t.Write && t.Offset == 8), Is.True);
        }
    }

    [Test]
    public void TheInterruptLineIsObservedTheSameWayOnEveryPlatform([Values] GuestArchitecture architecture)
    {
        var probe = new ProbeDevice(messages: false);
        using var guest = SimulatedPciGuest.Create(probe, architecture);
        Assert.That(guest.Intx, Is.Not.Null, "INTA");

        probe.Line(true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Intx!.IsAsserted, Is.True);
            Assert.That(guest.Intx.Assertions, Is.EqualTo(1));
        }

        probe.Line(false);
        probe.Line(true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Intx.Assertions, Is.EqualTo(2), "one per event, whatever carries it");
            Assert.That(guest.Messages, Is.Empty);
        }
    }

    // The example in docs/getting-started.md, as it is written there.
    [Test]
    public void TheGettingStartedExampleRuns([Values] GuestArchitecture architecture)
    {
        using var guest = SimulatedPciGuest.Create(new IoreqSdk.Devices.Edu.EduDevice(), architecture);
        Assert.That(guest.ReadBar(0, offset: 0, size: 4), Is.EqualTo(0x010000EDUL));
        guest.WriteBar(0, offset: 0x60, size: 4, value: 1);
        Assert.That(SimulatedPciGuest.WaitUntil(() => guest.Intx!.Assertions == 1), Is.True, "INTA (no driver enabled MSI)");
    }

    [Test]
    public void WaitingIsBounded()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(SimulatedPciGuest.WaitUntil(() => false, TimeSpan.FromMilliseconds(20)), Is.False, "a condition that never holds ends the wait");
            Assert.That(SimulatedPciGuest.WaitUntil(() => true), Is.True);
        }
    }

    [Test]
    public void OptionsOfAnotherArchitectureAreRefused()
    {
        Assert.That(
            () => SimulatedPciGuest.Create(new ProbeDevice(), GuestArchitecture.Arm64, options: new SimulationOptions { Architecture = GuestArchitecture.X86 }),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("options"));
    }
}
