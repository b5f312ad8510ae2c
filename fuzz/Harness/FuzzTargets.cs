using System;
using System.Collections.Generic;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// The fuzz targets by name: what <c>fuzz/run.sh TARGET</c> and the corpus replay run. A device author adds theirs
/// here (a name, and the ioreq-path or PCI harness given their device: docs/fuzzing.md), then a seed folder
/// fuzz/corpus/NAME/.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Every target, by the name of its corpus folder.</summary>
    public static IReadOnlyDictionary<string, Action<byte[]>> All { get; } = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["ioreq"] = input => IoreqPathTarget.Run(input),
        ["pci"] = input => PciTarget.Run(input),
        ["virtqueue"] = input => VirtqueueTarget.Run(input),
        ["registers"] = input => RegisterFileTarget.Run(input),
        ["xenstore"] = input => XenstoreTarget.Run(input),
    };

    /// <summary>The names, in the order <c>fuzz/run.sh --all</c> runs them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["ioreq", "pci", "virtqueue", "registers", "xenstore"];
}
