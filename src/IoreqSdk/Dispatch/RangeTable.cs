using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace IoreqSdk.Dispatch;

/// <summary>
/// An immutable, sorted set of non-overlapping inclusive ranges, each routed to a target (a device region, or a PCI
/// function's configuration space). A lookup first tries the range the previous lookup found, then binary-searches a
/// flat array; changes build a new table, which the dispatcher publishes with one reference store, so a lookup never
/// sees a half-updated table and never takes a lock.
/// </summary>
internal sealed class RangeTable<T>
    where T : class
{
    public static readonly RangeTable<T> Empty = new([]);

    // One array of entries rather than one per field: a lookup touches one object and pays one bounds check per probe.
    private readonly Entry[] _entries;

    // The index of the last range found. Guests hammer one device at a time, so most lookups end here without a
    // search. It is only a hint: every use re-checks the range, so a stale or torn value (another thread's lookup,
    // a plain int store racing a read) costs a binary search and never a wrong answer.
    private int _hint;

    private RangeTable(Entry[] entries)
    {
        _entries = entries;
    }

    public int Count => _entries.Length;

    /// <summary>Finds the range holding every byte of <c>[address, address + size - 1]</c>.</summary>
    /// <param name="address">The first byte.</param>
    /// <param name="size">The access width, at least 1.</param>
    /// <param name="target">The target.</param>
    /// <param name="offset">The offset of <paramref name="address"/> in the range.</param>
    /// <returns>Whether one range holds the whole access.</returns>
    /// <remarks>Inlined so that <paramref name="target"/> lands in the caller's register, not through a write barrier.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryFind(ulong address, int size, out T target, out ulong offset)
    {
        Entry[] entries = _entries;

        // The access's last byte, computed without wrapping past 2^64: an access that would wrap is never inside a range.
        ulong last = address + (ulong)(size - 1);
        if (last >= address)
        {
            int index = _hint;
            if ((uint)index < (uint)entries.Length)
            {
                ref readonly Entry hinted = ref entries[index];
                if (hinted.Start <= address && last <= hinted.End)
                {
                    target = hinted.Target;
                    offset = address - hinted.Start;
                    return true;
                }
            }

            index = Search(entries, address);
            if (index >= 0 && last <= entries[index].End)
            {
                _hint = index;
                target = entries[index].Target;
                offset = address - entries[index].Start;
                return true;
            }
        }

        target = null!;
        offset = 0;
        return false;
    }

    /// <summary>A table with one more range.</summary>
    /// <exception cref="InvalidOperationException">The range overlaps one of the table's.</exception>
    public RangeTable<T> With(ulong start, ulong end, T target)
    {
        if (!TryWith(start, end, target, out RangeTable<T> table, out T other))
        {
            ThrowHelper.ThrowInvalidOperation(FormattableString.Invariant($"[0x{start:x}, 0x{end:x}] for {target} overlaps {other}."));
        }

        return table;
    }

    /// <summary>A table with one more range, unless the range overlaps one of the table's.</summary>
    /// <param name="start">The range's first address.</param>
    /// <param name="end">The range's last address.</param>
    /// <param name="target">What the range routes to.</param>
    /// <param name="table">The new table; this one when the range overlaps.</param>
    /// <param name="conflict">The target of an overlapping range, when there is one.</param>
    /// <returns>Whether the range was added.</returns>
    public bool TryWith(ulong start, ulong end, T target, out RangeTable<T> table, out T conflict)
    {
        int index = 0;
        while (index < _entries.Length && _entries[index].Start < start)
        {
            index++;
        }

        bool overlapsPrevious = index > 0 && _entries[index - 1].End >= start;
        bool overlapsNext = index < _entries.Length && _entries[index].Start <= end;
        if (overlapsPrevious || overlapsNext)
        {
            conflict = overlapsPrevious ? _entries[index - 1].Target : _entries[index].Target;
            table = this;
            return false;
        }

        var entries = new Entry[_entries.Length + 1];
        Array.Copy(_entries, 0, entries, 0, index);
        entries[index] = new Entry(start, end, target);
        Array.Copy(_entries, index, entries, index + 1, _entries.Length - index);
        conflict = null!;
        table = new RangeTable<T>(entries);
        return true;
    }

    /// <summary>A table without the range of <paramref name="target"/>; the same table when it has none.</summary>
    public RangeTable<T> Without(T target)
    {
        int index = 0;
        while (index < _entries.Length && !ReferenceEquals(_entries[index].Target, target))
        {
            index++;
        }

        if (index == _entries.Length)
        {
            return this;
        }

        var entries = new Entry[_entries.Length - 1];
        Array.Copy(_entries, 0, entries, 0, index);
        Array.Copy(_entries, index + 1, entries, index, _entries.Length - index - 1);
        return new RangeTable<T>(entries);
    }

    /// <summary>The range holding <paramref name="address"/>, or -1.</summary>
    // Not inlined: in a caller, the loop's registers are saved and restored in the prologue on every lookup, the
    // hint's too (the JIT saves the callee-saved registers a method uses, whichever path uses them).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Search(Entry[] entries, ulong address)
    {
        // Ranges do not overlap, so the search may stop at the first range holding the address. The probes index
        // without bounds checks: 0 <= lo <= mid <= hi < entries.Length holds throughout (mid lies between lo and hi,
        // and each step moves lo up or hi down past mid), whatever the address.
        ref Entry first = ref MemoryMarshal.GetReference(entries.AsSpan());
        int lo = 0;
        int hi = entries.Length - 1;
        while (lo <= hi)
        {
            int mid = lo + ((hi - lo) >> 1);
            ref Entry probe = ref Unsafe.Add(ref first, mid);
            if (address < probe.Start)
            {
                hi = mid - 1;
            }
            else if (address > probe.End)
            {
                lo = mid + 1;
            }
            else
            {
                return mid;
            }
        }

        return -1;
    }

    private readonly record struct Entry(ulong Start, ulong End, T Target);
}
