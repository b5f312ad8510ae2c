namespace IoreqSdk.Pci;

/// <summary>The kind of a base address register.</summary>
public enum PciBarKind
{
    /// <summary>A 32-bit memory BAR.</summary>
    Memory32,

    /// <summary>A 64-bit memory BAR: a register pair, this index and the next.</summary>
    Memory64,

    /// <summary>An I/O-space BAR (ports on x86; a host bridge's PIO aperture on Arm64).</summary>
    Io,

    /// <summary>The expansion-ROM BAR at offset 0x30.</summary>
    ExpansionRom,
}
