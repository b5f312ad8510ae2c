using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;

namespace IoreqSdk.Platforms;

/// <summary>
/// x86 HVM guests: Xen decodes 0xCF8/0xCFC and sends <c>PCI_CONFIG</c> requests for each function the server claims
/// (QEMU remains server 0 and owns 00:00.0); I/O BARs are real ports; INTx goes through
/// <c>set_pci_intx_level</c>, MSI through <c>inject_msi</c>, a platform device's line is an ISA IRQ; the buffered ring
/// is ATOMIC. BAR addresses come from the guest's firmware (hvmloader on Xen), so the windows only bound what
/// firmware in the simulation assigns.
/// </summary>
public sealed class X86Platform : PciPlatform
{
    /// <inheritdoc/>
    public override GuestArchitecture Architecture => GuestArchitecture.X86;

    /// <inheritdoc/>
    public override BufferedIoreqMode BufferedMode => BufferedIoreqMode.Atomic;

    /// <inheritdoc/>
    public override bool HasPortIo => true;

    /// <inheritdoc/>
    public override PciConfigAccess ConfigAccess => HypervisorDecodedPciConfig.Instance;

    /// <inheritdoc/>
    public override PciIoSpace IoSpace => PortPciIoSpace.Instance;

    /// <inheritdoc/>
    public override PciWindow MemoryWindow => new(0xE000_0000, 0x1000_0000);

    /// <inheritdoc/>
    public override PciWindow PrefetchableWindow => new(0x10_0000_0000, 0x10_0000_0000);

    /// <inheritdoc/>
    public override PciWindow IoWindow => new(0xC000, 0x4000);

    /// <inheritdoc/>
    public override bool SupportsMessageInterrupts => true;

    /// <inheritdoc/>
    public override InterruptLine CreateIntxLine(IHypervisor hypervisor, ushort domain, PciSbdf function, int pin) =>
        HypervisorInterruptLines.PciIntx(hypervisor, domain, function, pin);

    /// <summary>An ISA IRQ, 0–15 (<c>set_isa_irq_level</c>).</summary>
    /// <inheritdoc/>
    public override InterruptLine CreateInterruptLine(IHypervisor hypervisor, ushort domain, uint line) =>
        HypervisorInterruptLines.IsaIrq(hypervisor, domain, line);

    /// <inheritdoc/>
    public override string? ReservedSlotReason(PciSbdf function) =>
        function.Segment == 0 && function.Bus == 0 && function.Device == 0 && function.Function == 0
            ? "0000:00:00.0 belongs to QEMU (ioreq server 0) on x86 guests; choose another slot."
            : null;

    /// <inheritdoc/>
    public override string? UnreachableSegmentReason(ushort segment) =>
        segment == 0 ? null : FormattableString.Invariant($"An x86 guest reaches PCI segment 0 only (Xen decodes 0xCF8/0xCFC); segment {segment} would never be seen.");
}
