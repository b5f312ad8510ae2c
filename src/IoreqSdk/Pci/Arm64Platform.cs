using System;
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

    /// <summary>The lowest SPI (GIC SPIs are 32–1019).</summary>
    public const uint FirstSpi = 32;

    /// <summary>The highest SPI.</summary>
    public const uint LastSpi = 1019;

    private const ulong PageSize = 0x1000;
    private const ulong EcamBusSize = 1UL << 20;
    private const ulong FourGiB = 1UL << 32;

    private ulong _ecamBase = DefaultEcamBase;
    private int _busCount = 1;
    private PciWindow _memory = DefaultMemoryWindow;
    private PciWindow _prefetchable = DefaultPrefetchableWindow;
    private PciWindow _pioAperture = DefaultPioAperture;
    private uint _intxSpiBase = 44;

    /// <summary>The ECAM window's base address: a multiple of 1 MiB (ECAM gives each bus 1 MiB, from bit 20).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not 1 MiB aligned, or the window would wrap past 2^64.</exception>
    public ulong EcamBase
    {
        get => _ecamBase;
        init
        {
            CheckEcam(value, _busCount);
            _ecamBase = value;
        }
    }

    /// <summary>How many buses the ECAM window covers (1 MiB each; <c>GUEST_VPCI_ECAM_SIZE</c> covers 256).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not 1 to 256.</exception>
    public int BusCount
    {
        get => _busCount;
        init
        {
            if (value is < 1 or > 256)
            {
                ThrowHelper.ThrowArgumentOutOfRange(nameof(BusCount), "An ECAM window covers 1 to 256 buses.");
            }

            CheckEcam(_ecamBase, value);
            _busCount = value;
        }
    }

    /// <inheritdoc/>
    public override PciWindow MemoryWindow => Memory;

    /// <summary>The 32-bit memory window: whole 4 KiB pages, ending at or below 4 GiB (its addresses are 32-bit).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Empty, not page aligned, or reaching past 4 GiB.</exception>
    public PciWindow Memory
    {
        get => _memory;
        init
        {
            CheckPages(value, nameof(Memory), "The 32-bit memory window");
            if (value.End >= FourGiB)
            {
                ThrowHelper.ThrowArgumentOutOfRange(nameof(Memory), FormattableString.Invariant(
                    $"The 32-bit memory window {value} must end at or below 4 GiB (0x100000000): its BARs hold 32-bit addresses. Put 64-bit space in the prefetchable window."));
            }

            _memory = value;
        }
    }

    /// <inheritdoc/>
    public override PciWindow PrefetchableWindow => Prefetchable;

    /// <summary>The 64-bit prefetchable window: whole 4 KiB pages.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Empty or not page aligned.</exception>
    public PciWindow Prefetchable
    {
        get => _prefetchable;
        init
        {
            CheckPages(value, nameof(Prefetchable), "The prefetchable window");
            _prefetchable = value;
        }
    }

    /// <summary>
    /// The PIO aperture in MMIO space; its offset 0 is I/O address 0. Whole 4 KiB pages, 8 KiB to 64 KiB: the bus
    /// decodes I/O addresses from 0x1000 (below are legacy ports) up to 0xFFFF.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Not page aligned, or outside 8 KiB to 64 KiB.</exception>
    public PciWindow PioAperture
    {
        get => _pioAperture;
        init
        {
            CheckPages(value, nameof(PioAperture), "The PIO aperture");
            if (value.Size is < 2 * PageSize or > 0x1_0000)
            {
                ThrowHelper.ThrowArgumentOutOfRange(nameof(PioAperture), FormattableString.Invariant(
                    $"The PIO aperture {value} spans 8 KiB to 64 KiB (I/O addresses 0x1000 to 0xFFFF decode; the first 4 KiB are legacy ports)."));
            }

            _pioAperture = value;
        }
    }

    /// <inheritdoc/>
    public override PciWindow IoWindow => new(0x1000, PioAperture.Size - 0x1000);

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

    /// <summary>The ECAM window (configuration space of every bus).</summary>
    public PciWindow Ecam => new(EcamBase, (ulong)BusCount * EcamBusSize);

    /// <summary>
    /// Checks the layout as a whole: the ECAM window, the 32-bit and prefetchable memory windows and the PIO aperture
    /// must not overlap (each property checked its own rules when it was set). A <see cref="PciHostBridge"/> calls it
    /// when it is created.
    /// </summary>
    /// <exception cref="ArgumentException">Two windows overlap; <see cref="ArgumentException.ParamName"/> names the first property.</exception>
    public override void Validate()
    {
        Span<(PciWindow Window, bool Moved, string Property, string Name)> windows =
        [
            (Ecam, EcamBase != DefaultEcamBase, nameof(EcamBase), "the ECAM window"),
            (Memory, Memory != DefaultMemoryWindow, nameof(Memory), "the 32-bit memory window"),
            (Prefetchable, Prefetchable != DefaultPrefetchableWindow, nameof(Prefetchable), "the prefetchable window"),
            (PioAperture, PioAperture != DefaultPioAperture, nameof(PioAperture), "the PIO aperture"),
        ];
        for (int i = 0; i < windows.Length; i++)
        {
            for (int j = i + 1; j < windows.Length; j++)
            {
                if (windows[i].Window.Base <= windows[j].Window.End && windows[j].Window.Base <= windows[i].Window.End)
                {
                    // Name the window that was moved from Xen's layout (the likelier mistake) first.
                    var (first, second) = windows[j].Moved && !windows[i].Moved ? (windows[j], windows[i]) : (windows[i], windows[j]);
                    ThrowHelper.ThrowArgument(first.Property, FormattableString.Invariant(
                        $"{Capitalise(first.Name)} {first.Window} overlaps {second.Name} {second.Window}; every window of the bridge needs addresses of its own."));
                }
            }
        }
    }

    /// <inheritdoc/>
    public override GuestArchitecture Architecture => GuestArchitecture.Arm64;

    /// <inheritdoc/>
    public override bool SupportsMessageInterrupts => false;

    /// <summary>The SPI that a function's INTx pin raises: the standard swizzle <c>(device + pin - 1) mod 4</c>.</summary>
    /// <param name="device">The device number.</param>
    /// <param name="pin">1–4 for INTA–INTD.</param>
    /// <returns>The SPI.</returns>
    public uint IntxSpi(int device, int pin) => IntxSpiBase + (uint)((device + pin - 1) & 3);

    private static void CheckEcam(ulong ecamBase, int busCount)
    {
        if ((ecamBase & (EcamBusSize - 1)) != 0 || ecamBase + (((ulong)busCount * EcamBusSize) - 1) < ecamBase)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(EcamBase), FormattableString.Invariant(
                $"The ECAM window at 0x{ecamBase:x} must start on a 1 MiB boundary and its {busCount} MiB must not wrap past 2^64."));
        }
    }

    private static void CheckPages(PciWindow window, string property, string name)
    {
        // default(PciWindow) is the one way to an empty window.
        if (window.Size == 0 || ((window.Base | window.Size) & (PageSize - 1)) != 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(property, FormattableString.Invariant(
                $"{name} {(window.Size == 0 ? "is empty" : window.ToString())}: its base and size must be non-zero multiples of 4 KiB (the guest maps it in pages)."));
        }
    }

    private static string Capitalise(string text) => char.ToUpperInvariant(text[0]) + text.Substring(1);
}
