using System.IO;
using System.Text;
using Demu.Simulation;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>
/// A new platform is one class: the platform defined in the test project (<see cref="PortlessX86Platform"/>: an x86
/// guest without port I/O, ECAM configuration space, a PIO aperture, its own windows and ISA IRQ numbering) serves
/// the unchanged edu and 16550 devices, driven by demu's own scripted guest drivers, with every check passing.
/// </summary>
[TestFixture]
public sealed class NewPlatformTests
{
    [Test]
    public void EduPassesDemusScriptOnAPlatformNoSdkFileKnows()
    {
        var edu = new EduDevice();
        using var guest = SimulatedPciGuest.Create(edu, GuestArchitecture.X86, platform: new PortlessX86Platform());
        var transcript = new StringWriter();
        var driver = new EduDriver(guest.Xen, guest.Bridge.Platform, guest.Function, edu, guest.Intx!, transcript);

        driver.Run();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(driver.Failed, Is.Zero, transcript.ToString());
            Assert.That(driver.Passed, Is.EqualTo(7));
            Assert.That(guest.Xen.Interrupts.Msis, Is.Not.Empty, "the platform offers MSI, and edu's driver used it");
            Assert.That(guest.Server.Statistics.PciConfigRequests, Is.Zero, "configuration space came through the ECAM window, as MMIO");
        }
    }

    [Test]
    public void TheSerialDevicePassesDemusScriptThroughTheAperture()
    {
        var transmitted = new StringBuilder();
        var serial = new PciSerialDevice(b => transmitted.Append((char)b));
        using var guest = SimulatedPciGuest.Create(serial, GuestArchitecture.X86, platform: new PortlessX86Platform());
        var transcript = new StringWriter();
        var driver = new SerialDriver(guest.Xen, guest.Bridge.Platform, guest.Function, serial, () => transmitted.ToString(), guest.Intx!, transcript);

        driver.Run();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(driver.Failed, Is.Zero, transcript.ToString());
            Assert.That(driver.Passed, Is.EqualTo(6));
            Assert.That(guest.Intx!.Description, Is.EqualTo("ISA IRQ 10"), "the platform's numbering: IRQ 9 + (5 + 1 - 1) mod 4");
            Assert.That(guest.Server.Statistics.PioRequests, Is.Zero, "the I/O BAR came through the aperture, as MMIO");
        }
    }
}
