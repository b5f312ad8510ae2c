using System;

namespace IoreqSdk.Devices;

/// <summary>
/// Access widths: those a region's handlers implement (<see cref="DeviceRegion.Widths"/>) and those a guest may use
/// (<see cref="DeviceRegion.AcceptedWidths"/>, the same unless the device opts in to adaptation). A width outside the
/// accepted ones is refused; an accepted width the handlers do not implement is split into narrower accesses or
/// served from an aligned wider one (reads extract, writes read-modify-write).
/// </summary>
[Flags]
public enum AccessWidths
{
    /// <summary>No width (invalid for a region).</summary>
    None = 0,

    /// <summary>1-byte accesses.</summary>
    Byte = 1,

    /// <summary>2-byte accesses.</summary>
    Word = 2,

    /// <summary>4-byte accesses.</summary>
    DWord = 4,

    /// <summary>8-byte accesses.</summary>
    QWord = 8,

    /// <summary>Every width.</summary>
    All = Byte | Word | DWord | QWord,
}
