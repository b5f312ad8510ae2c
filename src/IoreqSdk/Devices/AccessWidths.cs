using System;

namespace IoreqSdk.Devices;

/// <summary>
/// The access widths a region's handlers accept. Accesses of other widths are adapted by the SDK: split into
/// narrower accesses, or served from an aligned wider one (reads extract, writes read-modify-write).
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
