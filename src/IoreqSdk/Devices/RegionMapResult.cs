namespace IoreqSdk.Devices;

/// <summary>
/// What became of a request to map a region (a BAR the guest programmed, say): mapped, or why not. A guest-driven
/// mapping that fails is a result to count, not an exception: the region simply does not decode until it is moved.
/// </summary>
internal enum RegionMapResult
{
    /// <summary>The region decodes at the address.</summary>
    Mapped,

    /// <summary>The range overlaps another mapped region of its address space.</summary>
    Overlaps,

    /// <summary>The range would wrap around the end of the address space.</summary>
    WrapsAround,

    /// <summary>A port range on a guest without port I/O.</summary>
    NoPortIo,

    /// <summary>An I/O address the platform's I/O space cannot reach (beyond the ports, or the PIO aperture).</summary>
    Unreachable,

    /// <summary>A memory BAR outside the bridge's memory windows, on a bridge that confines BARs to them.</summary>
    OutsideWindows,

    /// <summary>The hypervisor refused the claim (another ioreq server owns part of the range, say).</summary>
    RefusedByHypervisor,
}
