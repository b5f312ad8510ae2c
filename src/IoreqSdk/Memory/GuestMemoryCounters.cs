namespace IoreqSdk.Memory;

/// <summary>The map cache's counters: written on the server's loop (plain increments), published by the server's statistics.</summary>
internal sealed class GuestMemoryCounters
{
    /// <summary>Frames mapped by the per-frame cache (its misses that found RAM).</summary>
    public long FrameMaps;

    /// <summary>Pins taken (a piece of a device's buffer each).</summary>
    public long Pins;

    /// <summary>256 KiB windows mapped for pins.</summary>
    public long PinWindowMaps;

    /// <summary>One-off mappings of a piece whose window did not map whole.</summary>
    public long PinPieceMaps;
}
