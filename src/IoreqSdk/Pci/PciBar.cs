using IoreqSdk.Devices;

namespace IoreqSdk.Pci;

/// <summary>A base address register of a <see cref="PciDevice"/> and the region it decodes.</summary>
public sealed class PciBar
{
    internal PciBar(int index, PciBarKind kind, ulong size, bool prefetchable, DeviceRegion region)
    {
        Index = index;
        Kind = kind;
        Size = size;
        Prefetchable = prefetchable;
        Region = region;
    }

    /// <summary>The BAR number, 0–5 (6 for the expansion ROM).</summary>
    public int Index { get; }

    /// <summary>Memory (32- or 64-bit), I/O or expansion ROM.</summary>
    public PciBarKind Kind { get; }

    /// <summary>The decoded size: a power of two (requested sizes are rounded up).</summary>
    public ulong Size { get; }

    /// <summary>Whether the memory BAR is prefetchable.</summary>
    public bool Prefetchable { get; }

    /// <summary>The device region behind the BAR.</summary>
    public DeviceRegion Region { get; }

    /// <summary>The bus address the guest programmed, while decode is enabled and the BAR holds an address; otherwise <see langword="null"/>.</summary>
    public ulong? Address { get; internal set; }

    /// <summary>The config-space offset of the BAR's (first) register.</summary>
    internal int Register => Kind == PciBarKind.ExpansionRom ? PciConfigRegisters.ExpansionRom : PciConfigRegisters.Bar0 + (4 * Index);
}
