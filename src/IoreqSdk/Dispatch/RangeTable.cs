using System;
namespace IoreqSdk.Dispatch;

/// <summary>
/// An immutable, sorted set of non-overlapping inclusive ranges, each routed to a target (a device region, or a PCI function's configuration space). Lookups are a
/// binary search over a flat array; changes build a new table, which the dispatcher publishes with one reference
/// store, so a lookup never sees a half-updated table and never takes a lock.
/// </summary>
internal sealed class RangeTable<T>
    where T : class
{
    public static readonly RangeTable<T> Empty = new([], [], []);

    private readonly ulong[] _starts;
    private readonly ulong[] _ends;
    private readonly T[] _targets;

    private RangeTable(ulong[] starts, ulong[] ends, T[] targets)
    {
        _starts = starts;
        _ends = ends;
        _targets = targets;
    }

    public int Count => _starts.Length;

    /// <summary>Finds the range holding every byte of <c>[address, address + size - 1]</c>.</summary>
    /// <param name="address">The first byte.</param>
    /// <param name="size">The access width, at least 1.</param>
    /// <param name="target">The target.</param>
    /// <param name="offset">The offset of <paramref name="address"/> in the range.</param>
    /// <returns>Whether one range holds the whole access.</returns>
    public bool TryFind(ulong address, int size, out T target, out ulong offset)
    {
        ulong[] starts = _starts;
        int lo = 0;
        int hi = starts.Length - 1;

        // The last range whose start is <= address.
        int found = -1;
        while (lo <= hi)
        {
            int mid = lo + ((hi - lo) >> 1);
            if (starts[mid] <= address)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        // The access's last byte, computed without wrapping past 2^64: an access that would wrap is never inside a range.
        if (found >= 0 && (ulong)(size - 1) <= ulong.MaxValue - address && address + (ulong)(size - 1) <= _ends[found])
        {
            target = _targets[found];
            offset = address - starts[found];
            return true;
        }

        target = null!;
        offset = 0;
        return false;
    }

    /// <summary>A table with one more range.</summary>
    /// <exception cref="InvalidOperationException">The range overlaps one of the table's.</exception>
    public RangeTable<T> With(ulong start, ulong end, T target)
    {
        int index = 0;
        while (index < _starts.Length && _starts[index] < start)
        {
            index++;
        }

        bool overlapsPrevious = index > 0 && _ends[index - 1] >= start;
        bool overlapsNext = index < _starts.Length && _starts[index] <= end;
        if (overlapsPrevious || overlapsNext)
        {
            T other = overlapsPrevious ? _targets[index - 1] : _targets[index];
            ThrowHelper.ThrowInvalidOperation(FormattableString.Invariant($"[0x{start:x}, 0x{end:x}] for {target} overlaps {other}."));
        }

        return new RangeTable<T>(Insert(_starts, index, start), Insert(_ends, index, end), Insert(_targets, index, target));
    }

    /// <summary>A table without the range of <paramref name="target"/>; the same table when it has none.</summary>
    public RangeTable<T> Without(T target)
    {
        int index = Array.IndexOf(_targets, target);
        return index < 0 ? this : new RangeTable<T>(Remove(_starts, index), Remove(_ends, index), Remove(_targets, index));
    }

    private static TItem[] Insert<TItem>(TItem[] array, int index, TItem value)
    {
        var result = new TItem[array.Length + 1];
        Array.Copy(array, 0, result, 0, index);
        result[index] = value;
        Array.Copy(array, index, result, index + 1, array.Length - index);
        return result;
    }

    private static TItem[] Remove<TItem>(TItem[] array, int index)
    {
        var result = new TItem[array.Length - 1];
        Array.Copy(array, 0, result, 0, index);
        Array.Copy(array, index + 1, result, index, array.Length - index - 1);
        return result;
    }
}
