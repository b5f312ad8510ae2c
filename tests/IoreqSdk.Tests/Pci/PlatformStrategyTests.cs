using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Pci;

/// <summary>
/// The platform decides, devices never do: only the platform classes (and the simulator's model of Xen's rules, and
/// the native backend saying which guests its host serves) tell the architectures apart, and a new machine is one
/// class that touches no SDK file.
/// </summary>
[TestFixture]
public sealed class PlatformStrategyTests
{
    // Where asking "which architecture?" is the point: the platforms themselves, the simulated Xen's per-architecture
    // rules, and the native backend reporting its host's architecture.
    private static readonly string[] s_allowed =
    [
        "src/IoreqSdk/Platforms/",
        "src/IoreqSdk/Xen/XenHypervisor.cs",
        "src/IoreqSdk.Simulation/SimulatedHypervisor.cs",
        "src/IoreqSdk.Simulation/SimulatedVcpu.cs",
        "src/IoreqSdk.Simulation/SimulationOptions.cs",
    ];

    // A test of the architecture: a comparison, pattern or switch arm on GuestArchitecture, or a type test or cast to
    // one of the SDK's platforms. Naming an architecture as a default value chooses it; that is not a test.
    private static readonly Regex s_architectureTest = new(
        @"(==|!=|\bis|\bcase)\s*(not\s+)?GuestArchitecture\.(X86|Arm64)|GuestArchitecture\.(X86|Arm64)\s*(=>|==|!=|\?)|\b(is|as)\s+(not\s+)?(X86|Arm64)Platform\b|\((X86|Arm64)Platform\)",
        RegexOptions.CultureInvariant);

    [Test]
    public void OnlyPlatformsAndTheSimulatedXenTellTheArchitecturesApart()
    {
        string root = Repository.Root();
        var offenders = new List<string>();
        foreach (string file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            string relative = file.Substring(root.Length + 1).Replace('\\', '/');
            if (relative.Contains("/obj/", StringComparison.Ordinal) || relative.Contains("/bin/", StringComparison.Ordinal)
                || s_allowed.Any(a => relative.StartsWith(a, StringComparison.Ordinal)))
            {
                continue;
            }

            string[] lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                if (!lines[i].TrimStart().StartsWith("///", StringComparison.Ordinal) && s_architectureTest.IsMatch(lines[i]))
                {
                    offenders.Add($"{relative}:{i + 1}: {lines[i].Trim()}");
                }
            }
        }

        Assert.That(offenders, Is.Empty, "architecture tests outside the platforms: ask the platform instead");
    }

    [Test]
    public void TheScanSeesAnArchitectureTestWhereThereIsOne()
    {
        // The guard above must be able to fail: the simulated Xen, which is allowed to, does test the architecture.
        string file = Path.Combine(Repository.Root(), "src", "IoreqSdk.Simulation", "SimulatedHypervisor.cs");
        Assert.That(File.ReadAllLines(file).Any(s_architectureTest.IsMatch), Is.True);
    }

    // A machine no SDK file knows: an x86 guest without port I/O (as a PVH guest is), whose configuration space is an
    // ECAM window and whose I/O BARs live in an aperture, with its own window placement and interrupt numbering.
    [Test]
    public void ANewPlatformIsOneClassAndServesAnUnchangedDevice()
    {
        var platform = new PortlessX86Platform();
        var probe = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(probe, 2), platform: platform);
        var address = new PciSbdf(0, 0, 2, 0);
        EnumeratedFunction function = guest.Function(address);
        AssignedBar io = guest.Bar(address, 0);
        AssignedBar mmio = guest.Bar(address, 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Functions.Select(f => f.Address), Does.Contain(new PciSbdf(0, 0, 0, 0)), "the ECAM bridge answers as 00:00.0");
            Assert.That(function.VendorId, Is.EqualTo(0x1af4), "enumerated through the ECAM window");
            Assert.That(io.Kind, Is.EqualTo(PciBarKind.Io));
            Assert.That(io.CpuAddress, Is.EqualTo(PortlessX86Platform.Aperture.Base + io.BusAddress), "the I/O BAR reached through the aperture");
            Assert.That(platform.MemoryWindow.Contains(mmio.BusAddress, mmio.Size), Is.True, "the memory BAR in the platform's own window");
            Assert.That(guest.Server.Platform, Is.SameAs(platform));
        }

        guest.Write(io, 4, 4, 0xC0FFEE);
        guest.Write(mmio, 8, 4, 0x5EED);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Read(io, 4, 4), Is.EqualTo(0xC0FFEEUL), "port I/O through MMIO, the device seeing port offsets");
            Assert.That(guest.Read(mmio, 8, 4), Is.EqualTo(0x5EEDUL));
            Assert.That(probe.Traffic.Where(t => t.Bar == 0).Select(t => t.Offset), Is.All.EqualTo(4UL), "offsets within the I/O BAR");
            Assert.That(guest.Server.Statistics.PioRequests, Is.Zero, "no port I/O reached the server: all of it came as MMIO");
        }

        // INTx goes where the platform numbers it: ISA IRQ 9 + (device + pin - 1) mod 4 = 11 for device 2, INTA.
        uint command = guest.Config(address, PciConfigRegisters.Command, 2);
        guest.Config(address, PciConfigRegisters.Command, 2, command & ~(uint)PciConfigRegisters.CommandInterruptDisable);
        probe.Line(true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Xen.Interrupts.IsaIrq(11), Is.True, "the platform's own interrupt numbering");
            Assert.That(guest.Xen.Interrupts.PciIntx(address, 0), Is.False, "not Xen's x86 PCI routing");
            Assert.That(guest.Bridge.IntxLineOf(probe)!.Description, Is.EqualTo("ISA IRQ 11"));
        }

        probe.Line(false);
        Assert.That(guest.Xen.Interrupts.IsaIrq(11), Is.False);
    }

    [Test]
    public void AServerTakesItsBufferedRingAndPortIoFromItsPlatform()
    {
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, Platform = new PortlessX86Platform() });
        var ports = new RegisterFile(RegionKind.Port, 8, 0x3F8);

        Assert.That(() => server.AddDevice(ports), Throws.InvalidOperationException.With.Message.Contains("no port I/O"), "the platform has none");
        Assert.That(() => new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, Platform = new Arm64Platform() }), Throws.ArgumentException, "an Arm64 machine on an x86 hypervisor");

        server.Start();
        Assert.That(() => xen.GetBufferedIoreqPort(xen.Domain, server.Id), Throws.Nothing, "a buffered ring, as the platform's Atomic mode asks");
        Assert.That(server.CreateInterruptLine(4).Description, Is.EqualTo("ISA IRQ 4"), "a platform device's line, as the platform numbers it");
    }
}
