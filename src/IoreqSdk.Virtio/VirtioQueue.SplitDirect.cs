using System;
using System.Runtime.CompilerServices;
using System.Threading;
using IoreqSdk.Memory;

namespace IoreqSdk.Virtio;

/// <content>
/// The split ring in place: when guest memory can give host addresses (<see cref="IDirectGuestMemory"/>, as the
/// server's map cache does) and each ring area lies in one page, the rings are read and written through pointers —
/// avail.idx with an acquire load and used.idx with a release store, as the ring protocol asks, instead of copies
/// behind full fences. The pointers are kept while the memory's mapping generation holds; any change (INVALIDATE, an
/// eviction) and they are looked up again before the next use. Otherwise the copies of VirtioQueue.Split.cs serve.
/// </content>
public sealed unsafe partial class VirtioQueue
{
    // Ring accesses served by copies after a failed look-up before the rings are looked up again.
    private const int MapBackoffAccesses = 64;

    private IDirectGuestMemory? _direct;
    private long _directGeneration;
    private bool _directValid;
    private int _mapBackoff;
    private byte* _descriptorRing;
    private byte* _availRing;
    private byte* _usedRing;

    /// <summary>Whether the rings are reachable in place now (looked up again after any mapping change).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool RingsInPlace()
    {
        IDirectGuestMemory? direct = _direct;
        if (direct is null)
        {
            return false;
        }

        if (_directValid && direct.MappingGeneration == _directGeneration)
        {
            return true;
        }

        // After a failed look-up the next ones are spent on copies: rings whose frames evict each other in the map
        // cache (a guest may place them so) would otherwise cost up to six map calls per ring access for nothing.
        if (_mapBackoff > 0)
        {
            _mapBackoff--;
            return false;
        }

        return MapRings(direct);
    }

    private bool MapRings(IDirectGuestMemory direct)
    {
        _directValid = false;
        if (!BitConverter.IsLittleEndian)
        {
            // The rings are little-endian; in place, they are read as the host's integers.
            return false;
        }

        // Mapping one area may evict another's frame (a direct-mapped cache): the three are in place together only
        // if a full pass maps them without the generation moving. Two passes: the first may fault pages in.
        for (int pass = 0; pass < 2; pass++)
        {
            long generation = direct.MappingGeneration;
            if (direct.TryGetHostAddress(DescriptorArea, DescriptorSize * Size, out nint descriptors)
                && direct.TryGetHostAddress(DriverArea, 6 + (2 * Size), out nint avail)
                && direct.TryGetHostAddress(DeviceArea, 6 + (8 * Size), out nint used)
                && direct.MappingGeneration == generation)
            {
                _descriptorRing = (byte*)descriptors;
                _availRing = (byte*)avail;
                _usedRing = (byte*)used;
                _directGeneration = generation;
                _directValid = true;
                return true;
            }
        }

        _mapBackoff = MapBackoffAccesses;
        return false;
    }

    private void ResetDirect(IGuestMemory? memory)
    {
        _direct = memory as IDirectGuestMemory;
        _directValid = false;
        _mapBackoff = 0;
        _descriptorRing = _availRing = _usedRing = null;
    }

    /// <summary>avail.idx, with acquire semantics: the ring entries and descriptors it publishes are read after it.</summary>
    private ushort ReadPublishedAvailInPlace() =>
        // Acquire: the driver wrote the entries and descriptors, then (after its write barrier) avail.idx; a volatile
        // load keeps every later ring and descriptor read behind it (ldar on Arm64, a plain load on x86).
        Volatile.Read(ref *(ushort*)(_availRing + AvailIdxOffset));

    private ushort ReadAvailEntryInPlace(ulong slot) => *(ushort*)(_availRing + AvailRingOffset + (2 * slot));

    private void WriteAvailEventInPlace(ushort value) => *(ushort*)(_usedRing + UsedRingOffset + (8UL * Size)) = value;

    private void PushInPlace(ushort id, uint bytesWritten)
    {
        // The ring pointer and the index in locals: after the element's store through a pointer, the JIT would load
        // both fields again (the store might have changed them, as far as it knows).
        byte* used = _usedRing;
        ushort index = _nextUsed;
        ulong slot = (ulong)(index & (Size - 1));
        *(ulong*)(used + UsedRingOffset + (8 * slot)) = id | ((ulong)bytesWritten << 32);
        index++;
        _nextUsed = index;

        // Release: the element is visible before the used.idx that publishes it (stlr on Arm64, a plain store on
        // x86); the driver reads idx, then, after its read barrier, the element.
        Volatile.Write(ref *(ushort*)(used + UsedIdxOffset), index);
    }

    private ushort ReadUsedEventInPlace() => *(ushort*)(_availRing + AvailRingOffset + (2UL * Size));

    private ushort ReadAvailFlagsInPlace() => *(ushort*)_availRing;
}
