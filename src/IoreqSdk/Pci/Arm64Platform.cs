using IoreqSdk.Hypervisor;

namespace IoreqSdk.Pci;

/// <summary>
/// Arm64 guests. Xen forwards MMIO only, so the host bridge itself provides what x86 gets from Xen and the chipset:
/// an ECAM window for configuration space (with the host-bridge function at 00:00.0), and a <b>PIO aperture</b> — an
/// MMIO window whose offsets are I/O-space addresses — so a device's I/O BAR works exactly as on x86. INTx is an SPI
/// (<c>IntxSpiBase</c> + the swizzled pin) raised through <c>set_irq_level</c>; Xen 4.17 offers no MSI on Arm, so
/// MSI and MSI-X capabilities are hidden and devices fall back to INTx. Defaults follow Xen's Arm guest layout
/// (<c>xen/include/public/arch-arm.h</c>).
/// </summary>
public sealed class Arm64Platform : PciPlatform
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

    /// <summary>The ECAM window's base address.</summary>
    public ulong EcamBase { get; init; } = DefaultEcamBase;

    /// <summary>How many buses the ECAM window covers (1 MiB each; <c>GUEST_VPCI_ECAM_SIZE</c> covers 256).</summary>
    public int BusCount { get; init; } = 1;

    /// <inheritdoc/>
    public override PciWindow MemoryWindow => Memory;

    /// <summary>The 32-bit memory window (settable).</summary>
    public PciWindow Memory { get; init; } = DefaultMemoryWindow;

    /// <inheritdoc/>
    public override PciWindow PrefetchableWindow => Prefetchable;

    /// <summary>The 64-bit prefetchable window (settable).</summary>
    public PciWindow Prefetchable { get; init; } = DefaultPrefetchableWindow;

    /// <summary>The PIO aperture in MMIO space; its offset 0 is I/O address 0.</summary>
    public PciWindow PioAperture { get; init; } = DefaultPioAperture;

    /// <inheritdoc/>
    public override PciWindow IoWindow => new(0x1000, PioAperture.Size - 0x1000);

    /// <summary>The SPI of INTA on device 0; the toolstack must reserve SPIs from here to here + 3.</summary>
    public uint IntxSpiBase { get; init; } = 44;

    /// <inheritdoc/>
    public override GuestArchitecture Architecture => GuestArchitecture.Arm64;

    /// <inheritdoc/>
    public override bool SupportsMessageInterrupts => false;

    /// <summary>The SPI that a function's INTx pin raises: the standard swizzle <c>(device + pin - 1) mod 4</c>.</summary>
    /// <param name="device">The device number.</param>
    /// <param name="pin">1–4 for INTA–INTD.</param>
    /// <returns>The SPI.</returns>
    public uint IntxSpi(int device, int pin) => IntxSpiBase + (uint)((device + pin - 1) & 3);
}
