using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;

namespace IoreqSdk.Platforms;

/// <summary>
/// Arm64 guests of Xen. Xen forwards MMIO only, so the host bridge itself provides what x86 gets from Xen and the
/// chipset: an ECAM window for configuration space and a PIO aperture for I/O BARs (<see cref="EcamPlatform"/>).
/// INTx is an SPI (<see cref="IntxSpiBase"/> + the swizzled pin) raised through <c>set_irq_level</c>; a platform
/// device's line is an SPI by number; Xen 4.17 offers no MSI on Arm, so MSI and MSI-X capabilities are hidden and
/// devices fall back to INTx; there is no buffered ring. Defaults follow Xen's Arm guest layout
/// (<c>xen/include/public/arch-arm.h</c>).
/// </summary>
public sealed class Arm64Platform : EcamPlatform
{
    /// <summary><c>GUEST_VPCI_ECAM_BASE</c>.</summary>
    public const ulong DefaultEcamBase = 0x1000_0000;

    /// <summary><c>GUEST_VPCI_MEM_ADDR</c> / <c>GUEST_VPCI_MEM_SIZE</c>.</summary>
    public static readonly PciWindow DefaultMemoryWindow = new(0x2300_0000, 0x1000_0000);

    /// <summary><c>GUEST_VPCI_PREFETCH_MEM_ADDR</c> / <c>GUEST_VPCI_PREFETCH_MEM_SIZE</c>.</summary>
    public static readonly PciWindow DefaultPrefetchableWindow = new(0x1_0000_0000, 0x1_0000_0000);

    /// <summary>
    /// Where the PIO aperture sits by default: 64 KiB at 0x3EFF_0000, a hole of Xen's Arm guest map (between the
    /// magic pages and RAM) and the address QEMU's Arm "virt" machine gives its PIO window.
    /// </summary>
    public static readonly PciWindow DefaultPioAperture = new(0x3EFF_0000, 0x1_0000);

    /// <summary>The lowest SPI (GIC SPIs are 32–1019).</summary>
    public const uint FirstSpi = 32;

    /// <summary>The highest SPI.</summary>
    public const uint LastSpi = 1019;

    /// <summary>
    /// The default SPI base: the first after Xen's virtio-mmio range (<c>GUEST_VIRTIO_MMIO_SPI_LAST</c> = 43). Xen
    /// 4.17's libxl gives a guest only the SPIs its virtio disks need; see docs/platforms.md for the rule there.
    /// </summary>
    public const uint DefaultIntxSpiBase = 44;

    /// <summary>The phandle of the vGIC node libxl writes into a guest's device tree (<c>GUEST_PHANDLE_GIC</c>).</summary>
    public const uint GuestGicPhandle = 0xfde8;

    private uint _intxSpiBase = DefaultIntxSpiBase;

    /// <summary>Creates the platform with Xen's Arm guest layout.</summary>
    public Arm64Platform()
        : base(DefaultEcamBase, DefaultMemoryWindow, DefaultPrefetchableWindow, DefaultPioAperture)
    {
    }

    /// <inheritdoc/>
    public override GuestArchitecture Architecture => GuestArchitecture.Arm64;

    /// <summary>Off: Xen has no buffered ring on Arm.</summary>
    public override BufferedIoreqMode BufferedMode => BufferedIoreqMode.Off;

    /// <summary>None: Arm has no I/O instructions; I/O BARs go through the PIO aperture.</summary>
    public override bool HasPortIo => false;

    /// <summary>Yes: xen/include/public/arch-arm.h's GUEST_VIRTIO_MMIO_BASE window and SPIs 33 to 43.</summary>
    public override bool HasVirtioMmioWindow => true;

    /// <inheritdoc/>
    public override bool SupportsMessageInterrupts => false;

    /// <summary>The SPI of INTA on device 0; the toolstack must reserve SPIs from here to here + 3 (all within 32–1019).</summary>
    /// <exception cref="ArgumentOutOfRangeException">It or it + 3 is not an SPI.</exception>
    public uint IntxSpiBase
    {
        get => _intxSpiBase;
        init
        {
            if (value < FirstSpi || value > LastSpi - 3)
            {
                ThrowHelper.ThrowArgumentOutOfRange(nameof(IntxSpiBase), FormattableString.Invariant(
                    $"INTx raises SPIs {value} to {(ulong)value + 3}; GIC SPIs are {FirstSpi} to {LastSpi}, so the base is {FirstSpi} to {LastSpi - 3}."));
            }

            _intxSpiBase = value;
        }
    }

    /// <summary>The SPI that a function's INTx pin raises: the standard swizzle <c>(device + pin - 1) mod 4</c>.</summary>
    /// <param name="device">The device number.</param>
    /// <param name="pin">1–4 for INTA–INTD.</param>
    /// <returns>The SPI.</returns>
    public uint IntxSpi(int device, int pin) => IntxSpiBase + (uint)((device + pin - 1) & 3);

    /// <inheritdoc/>
    public override InterruptLine CreateIntxLine(IHypervisor hypervisor, ushort domain, PciSbdf function, int pin) =>
        HypervisorInterruptLines.Spi(hypervisor, domain, IntxSpi(function.Device, pin));

    /// <summary>An SPI by number, 32–1019 (<c>set_irq_level</c>).</summary>
    /// <inheritdoc/>
    public override InterruptLine CreateInterruptLine(IHypervisor hypervisor, ushort domain, uint line)
    {
        if (line is < FirstSpi or > LastSpi)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(line), FormattableString.Invariant($"SPI {line}: GIC SPIs are {FirstSpi} to {LastSpi}."));
        }

        return HypervisorInterruptLines.Spi(hypervisor, domain, line);
    }

    /// <summary>The GIC's SPI specifier: <c>&lt;0 (SPI) number-32 4 (level high)&gt;</c>.</summary>
    /// <inheritdoc/>
    protected override string DeviceTreeIntxSpecifier(int device, int pin) =>
        FormattableString.Invariant($"0x0 0x{IntxSpi(device, pin) - FirstSpi:x} 0x4");
}
