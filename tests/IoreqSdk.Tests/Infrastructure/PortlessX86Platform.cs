using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>The whole of a new platform: an x86 guest with no port I/O, ECAM configuration and a PIO aperture.</summary>
internal sealed class PortlessX86Platform : EcamPlatform
{
    public static readonly PciWindow Aperture = new(0xFE00_0000, 0x1_0000);

    public PortlessX86Platform()
        : base(0xB000_0000, new PciWindow(0xC000_0000, 0x1000_0000), new PciWindow(0x40_0000_0000, 0x1_0000_0000), Aperture)
    {
    }

    public override GuestArchitecture Architecture => GuestArchitecture.X86;

    public override BufferedIoreqMode BufferedMode => BufferedIoreqMode.Atomic;

    public override bool HasPortIo => false;

    public override bool SupportsMessageInterrupts => true;

    public override InterruptLine CreateIntxLine(IHypervisor hypervisor, ushort domain, PciSbdf function, int pin) =>
        HypervisorInterruptLines.IsaIrq(hypervisor, domain, 9 + (uint)((function.Device + pin - 1) & 3));

    public override InterruptLine CreateInterruptLine(IHypervisor hypervisor, ushort domain, uint line) =>
        HypervisorInterruptLines.IsaIrq(hypervisor, domain, line);
}
