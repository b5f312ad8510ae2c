using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Platforms;

/// <summary>
/// Interrupt lines over the hypervisor's injection calls, for platforms to hand out: each is one of Xen's device-model
/// operations for one guest. A platform picks the one its guests have; devices only see <see cref="InterruptLine"/>.
/// </summary>
public static class HypervisorInterruptLines
{
    /// <summary>A PCI function's INTx pin as Xen routes it on x86 (<c>set_pci_intx_level</c>: Xen's IO-APIC swizzle).</summary>
    /// <param name="hypervisor">The hypervisor.</param>
    /// <param name="domain">The guest.</param>
    /// <param name="function">The function.</param>
    /// <param name="pin">1–4 for INTA–INTD.</param>
    /// <returns>The line.</returns>
    public static InterruptLine PciIntx(IHypervisor hypervisor, ushort domain, PciSbdf function, int pin)
    {
        Check(hypervisor);
        if (pin is < 1 or > 4)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(pin), "An INTx pin is 1 to 4 (INTA to INTD).");
        }

        return InterruptLine.Create(
            $"IO-APIC level, INT{(char)('A' + pin - 1)} of {function}",
            asserted => hypervisor.SetPciIntxLevel(domain, function, pin - 1, asserted));
    }

    /// <summary>An x86 ISA IRQ line (<c>set_isa_irq_level</c>).</summary>
    /// <param name="hypervisor">The hypervisor.</param>
    /// <param name="domain">The guest.</param>
    /// <param name="irq">0–15.</param>
    /// <returns>The line.</returns>
    public static InterruptLine IsaIrq(IHypervisor hypervisor, ushort domain, uint irq)
    {
        Check(hypervisor);
        if (irq > 15)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(irq), "An ISA IRQ is 0 to 15.");
        }

        return InterruptLine.Create(FormattableString.Invariant($"ISA IRQ {irq}"), asserted => hypervisor.SetIsaIrqLevel(domain, (int)irq, asserted));
    }

    /// <summary>
    /// An interrupt by number (<c>set_irq_level</c>: an Arm64 SPI). Xen 4.17's vGIC injects when the level goes to 1
    /// and ignores 0, so each assertion is one event; both edges are still forwarded, as QEMU does.
    /// </summary>
    /// <param name="hypervisor">The hypervisor.</param>
    /// <param name="domain">The guest.</param>
    /// <param name="spi">The interrupt number (32–1019 for GIC SPIs).</param>
    /// <returns>The line.</returns>
    public static InterruptLine Spi(IHypervisor hypervisor, ushort domain, uint spi)
    {
        Check(hypervisor);
        return InterruptLine.Create(FormattableString.Invariant($"SPI {spi}"), asserted => hypervisor.SetIrqLevel(domain, spi, asserted));
    }

    private static void Check(IHypervisor hypervisor)
    {
        if (hypervisor is null)
        {
            throw new ArgumentNullException(nameof(hypervisor));
        }
    }
}
