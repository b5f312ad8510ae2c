using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using IoreqSdk.Pci;

namespace IoreqSdk.Platforms;

/// <summary>
/// A machine whose host bridge owns its address space, as an Arm server's PCIe controller does: configuration space
/// is an ECAM window the bridge claims (with the bridge itself as function 00:00.0), I/O BARs live in a PIO
/// aperture (an MMIO window whose offsets are I/O addresses), and memory BARs decode only inside the bridge's 32-bit
/// and prefetchable windows. <see cref="Arm64Platform"/> is one; so would be a guest without port I/O of another
/// architecture. The layout is set with init properties, each checked when set; <see cref="Validate"/> checks them
/// together. The guest learns of such a bridge from its firmware tables or device tree
/// (<see cref="DescribeDeviceTreeNode"/>).
/// </summary>
public abstract class EcamPlatform : PciPlatform
{
    private const ulong PageSize = 0x1000;
    private const ulong EcamBusSize = 1UL << 20;
    private const ulong FourGiB = 1UL << 32;

    private readonly ulong _defaultEcamBase;
    private readonly PciWindow _defaultMemory;
    private readonly PciWindow _defaultPrefetchable;
    private readonly PciWindow _defaultPioAperture;
    private ulong _ecamBase;
    private int _busCount = 1;
    private PciWindow _memory;
    private PciWindow _prefetchable;
    private PciWindow _pioAperture;

    /// <summary>Creates the platform with its default layout (each part can then be moved with its init property).</summary>
    /// <param name="ecamBase">The ECAM window's default base (one bus).</param>
    /// <param name="memory">The default 32-bit memory window.</param>
    /// <param name="prefetchable">The default 64-bit prefetchable window.</param>
    /// <param name="pioAperture">The default PIO aperture.</param>
    protected EcamPlatform(ulong ecamBase, PciWindow memory, PciWindow prefetchable, PciWindow pioAperture)
    {
        CheckEcam(ecamBase, 1);
        CheckPages(memory, nameof(memory), "The 32-bit memory window");
        CheckPages(prefetchable, nameof(prefetchable), "The prefetchable window");
        CheckPages(pioAperture, nameof(pioAperture), "The PIO aperture");
        _ecamBase = _defaultEcamBase = ecamBase;
        _memory = _defaultMemory = memory;
        _prefetchable = _defaultPrefetchable = prefetchable;
        _pioAperture = _defaultPioAperture = pioAperture;
    }

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

    /// <summary>The ECAM window (configuration space of every bus).</summary>
    public PciWindow Ecam => new(EcamBase, (ulong)BusCount * EcamBusSize);

    /// <summary>
    /// Checks the layout as a whole: the ECAM window, the 32-bit and prefetchable memory windows and the PIO aperture
    /// must not overlap (each property checked its own rules when it was set). A <see cref="PciHostBridge"/> calls it
    /// when it is created; a subclass that overrides it calls this one too.
    /// </summary>
    /// <exception cref="ArgumentException">Two windows overlap; <see cref="ArgumentException.ParamName"/> names the first property.</exception>
    public override void Validate()
    {
        Span<(PciWindow Window, bool Moved, string Property, string Name)> windows =
        [
            (Ecam, EcamBase != _defaultEcamBase, nameof(EcamBase), "the ECAM window"),
            (Memory, Memory != _defaultMemory, nameof(Memory), "the 32-bit memory window"),
            (Prefetchable, Prefetchable != _defaultPrefetchable, nameof(Prefetchable), "the prefetchable window"),
            (PioAperture, PioAperture != _defaultPioAperture, nameof(PioAperture), "the PIO aperture"),
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
    public override PciConfigAccess ConfigAccess => new EcamPciConfig(Ecam);

    /// <inheritdoc/>
    public override PciIoSpace IoSpace => new PioAperturePciIoSpace(PioAperture);

    /// <inheritdoc/>
    public override bool ConfinesMemoryBarsToWindows => true;

    /// <inheritdoc/>
    public override IReadOnlyList<PciWindow> ExclusiveWindows => [Ecam, Memory, Prefetchable, PioAperture];

    /// <summary>
    /// The device-tree node that describes a bridge on this platform to the guest (compatible
    /// <c>pci-host-ecam-generic</c>, <c>reg</c>, <c>bus-range</c>, <c>linux,pci-domain</c>, <c>ranges</c> with the
    /// I/O, memory and prefetchable windows, and — where the platform gives INTx specifiers — the
    /// <c>interrupt-map</c>), in device-tree source syntax.
    /// </summary>
    /// <param name="segment">The bridge's PCI segment (its <c>linux,pci-domain</c>).</param>
    /// <param name="interruptParent">The phandle of the guest's interrupt controller.</param>
    /// <param name="interruptParentAddressCells">
    /// The interrupt controller's <c>#address-cells</c>: how many unit-address cells precede each parent specifier in
    /// <c>interrupt-map</c>.
    /// </param>
    /// <returns>The node.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="interruptParentAddressCells"/> is not 0 to 3.</exception>
    public string DescribeDeviceTreeNode(ushort segment, uint interruptParent, int interruptParentAddressCells)
    {
        if (interruptParentAddressCells is < 0 or > 3)
        {
            throw new ArgumentOutOfRangeException(nameof(interruptParentAddressCells), interruptParentAddressCells, "A device-tree node has 0 to 3 address cells.");
        }

        string parentAddress = new StringBuilder().Insert(0, " 0x0", interruptParentAddressCells).ToString();
        var sb = new StringBuilder();
        string Cells64(ulong v) => string.Format(CultureInfo.InvariantCulture, "0x{0:x} 0x{1:x}", (uint)(v >> 32), (uint)v);
        sb.Append(FormattableString.Invariant($"pcie@{EcamBase:x} {{\n"));
        sb.Append("\tcompatible = \"pci-host-ecam-generic\";\n");
        sb.Append("\tdevice_type = \"pci\";\n");
        sb.Append("\t#address-cells = <3>;\n\t#size-cells = <2>;\n\t#interrupt-cells = <1>;\n");
        sb.Append(FormattableString.Invariant($"\treg = <{Cells64(EcamBase)} {Cells64(Ecam.Size)}>;\n"));
        sb.Append(FormattableString.Invariant($"\tbus-range = <0x0 0x{BusCount - 1:x}>;\n"));
        sb.Append(FormattableString.Invariant($"\tlinux,pci-domain = <{segment}>;\n"));
        sb.Append("\tranges = <");
        // I/O: the bus's I/O window (what the bridge decodes; the aperture's first 4 KiB, legacy ports, are not
        // offered) at the aperture's CPU address plus the same offset, so the guest can only assign what decodes.
        PciWindow io = IoWindow;
        sb.Append(FormattableString.Invariant($"0x01000000 0x0 0x{io.Base:x} {Cells64(PioAperture.Base + io.Base)} {Cells64(io.Size)}\n\t\t  "));
        sb.Append(FormattableString.Invariant($"0x02000000 {Cells64(Memory.Base)} {Cells64(Memory.Base)} {Cells64(Memory.Size)}\n\t\t  "));
        sb.Append(FormattableString.Invariant($"0x43000000 {Cells64(Prefetchable.Base)} {Cells64(Prefetchable.Base)} {Cells64(Prefetchable.Size)}>;\n"));
        if (DeviceTreeIntxSpecifier(0, 1) is not null)
        {
            // Four devices by four pins cover every slot: the mask keeps the device number's low two bits, the ones
            // the standard swizzle depends on.
            sb.Append("\tinterrupt-map-mask = <0x1800 0x0 0x0 0x7>;\n");
            sb.Append("\tinterrupt-map = <");
            for (int device = 0; device < 4; device++)
            {
                for (int pin = 1; pin <= 4; pin++)
                {
                    // The child's unit address and pin, the parent's phandle and unit address (as many cells as its
                    // #address-cells), then the parent's specifier.
                    sb.Append(FormattableString.Invariant($"{(device == 0 && pin == 1 ? string.Empty : "\n\t\t  ")}0x{device << 11:x} 0x0 0x0 0x{pin:x} 0x{interruptParent:x}{parentAddress} {DeviceTreeIntxSpecifier(device, pin)}"));
                }
            }

            sb.Append(">;\n");
        }

        sb.Append("};\n");
        return sb.ToString();
    }

    /// <summary>
    /// The interrupt parent's specifier for a device number's INTx pin in the device tree, or <see langword="null"/>
    /// when the platform's interrupts are not described there (then the node has no <c>interrupt-map</c>).
    /// </summary>
    /// <param name="device">The device number (0–3 stand for all, by the swizzle).</param>
    /// <param name="pin">1–4 for INTA–INTD.</param>
    /// <returns>The specifier's cells in device-tree source syntax.</returns>
    protected virtual string? DeviceTreeIntxSpecifier(int device, int pin) => null;

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
