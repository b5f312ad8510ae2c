using System.Collections.Generic;

namespace IoreqSdk.Simulation;

/// <summary>
/// One of Xen's rangesets: the inclusive ranges of one type (ports, memory or PCI functions) that one ioreq server
/// claimed. Claims may not overlap within the set; releasing part of a claimed range keeps what remains on either
/// side (<c>rangeset_remove_range</c>). Not thread-safe: the server table serialises every access.
/// </summary>
internal sealed class SimulatedRangeSet
{
    private readonly List<(ulong Start, ulong End)> _ranges = new();

    /// <summary>How many ranges the set holds.</summary>
    public int Count => _ranges.Count;

    /// <summary>Finds a claimed range that shares an address with [<paramref name="start"/>, <paramref name="end"/>].</summary>
    public bool TryFindOverlap(ulong start, ulong end, out (ulong Start, ulong End) overlap)
    {
        foreach ((ulong a, ulong b) in _ranges)
        {
            if (start <= b && a <= end)
            {
                overlap = (a, b);
                return true;
            }
        }

        overlap = default;
        return false;
    }

    /// <summary>Claims a range the caller checked for overlaps and room.</summary>
    public void Add(ulong start, ulong end) => _ranges.Add((start, end));

    /// <summary>
    /// Releases [<paramref name="start"/>, <paramref name="end"/>] from the one claimed range that contains it; what
    /// remains of that range on either side stays claimed.
    /// </summary>
    /// <returns>Whether a claimed range contained it.</returns>
    public bool Remove(ulong start, ulong end)
    {
        for (int i = 0; i < _ranges.Count; i++)
        {
            (ulong a, ulong b) = _ranges[i];
            if (start >= a && end <= b)
            {
                _ranges.RemoveAt(i);
                if (a < start)
                {
                    _ranges.Add((a, start - 1));
                }

                if (end < b)
                {
                    _ranges.Add((end + 1, b));
                }

                return true;
            }
        }

        return false;
    }

    /// <summary>Whether one claimed range covers all of [<paramref name="first"/>, <paramref name="last"/>] (how Xen routes an access).</summary>
    public bool Covers(ulong first, ulong last)
    {
        foreach ((ulong start, ulong end) in _ranges)
        {
            if (first >= start && last <= end)
            {
                return true;
            }
        }

        return false;
    }
}
