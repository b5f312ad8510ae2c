using System;
using System.Collections.Generic;
using IoreqSdk.Memory;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>
/// The driver side of a packed virtqueue, as Linux's virtio_ring drives one, for testing a virtio device without a
/// guest: buffer ids from a free list, every descriptor of a list marked for its lap and the first one's flags
/// written last, the used ring walked by each buffer's descriptor count, the kick decided from the device event
/// suppression structure. Raw writes let a test play a hostile driver.
/// </summary>
/// <remarks>Single-threaded, like the tests it serves; its steady state allocates nothing.</remarks>
public sealed class GuestPackedVirtqueue : GuestVirtqueue
{
    private const ushort AvailBit = 1 << 7;
    private const ushort UsedBit = 1 << 15;

    private readonly Stack<ushort> _freeIds;
    private readonly int[] _slots;
    private ushort _added;
    private int _slotsInFlight;

    /// <summary>Sets up the driver's view of a queue whose ring and event structures the caller has placed (and zeroed) in guest memory.</summary>
    /// <param name="memory">Guest RAM.</param>
    /// <param name="size">The queue size (1 to 32768).</param>
    /// <param name="descriptorArea">The descriptor ring (16-aligned).</param>
    /// <param name="driverArea">The driver event suppression structure (4-aligned).</param>
    /// <param name="deviceArea">The device event suppression structure (4-aligned).</param>
    public GuestPackedVirtqueue(IGuestMemory memory, ushort size, ulong descriptorArea, ulong driverArea, ulong deviceArea)
        : base(memory, size, descriptorArea, driverArea, deviceArea)
    {
        _slots = new int[size];
        _freeIds = GuestRing.FreeList(size);
    }

    /// <summary>The ring position the driver fills next.</summary>
    public ushort NextAvail { get; private set; }

    /// <summary>The driver's ring wrap counter (starts at 1, as <see langword="true"/>).</summary>
    public bool AvailWrap { get; private set; } = true;

    /// <summary>The ring position of the next used descriptor.</summary>
    public ushort NextUsed { get; private set; }

    /// <summary>The wrap counter the next used descriptor carries.</summary>
    public bool UsedWrap { get; private set; } = true;

    /// <summary>The device event suppression flags (0 enable, 1 disable, 2 descriptor).</summary>
    public ushort DeviceEventFlags => GuestRing.Read16(Memory, DeviceArea + 2);

    /// <summary>The device event suppression offset (bits 0–14) and wrap counter (bit 15).</summary>
    public ushort DeviceEventOffWrap => GuestRing.Read16(Memory, DeviceArea);

    /// <summary>The AVAIL/USED bits that mark a descriptor available in the lap with wrap counter <paramref name="wrap"/>.</summary>
    /// <param name="wrap">The lap's wrap counter.</param>
    /// <returns>AVAIL set and USED clear for 1; the reverse for 0.</returns>
    public static ushort AvailableFlags(bool wrap) => wrap ? AvailBit : UsedBit;

    /// <summary>The address of ring position <paramref name="position"/>.</summary>
    /// <param name="position">The position.</param>
    /// <returns>Its guest-physical address.</returns>
    public ulong SlotAddress(int position) => DescriptorArea + (16UL * (uint)position);

    /// <inheritdoc/>
    public override ushort Post(ReadOnlySpan<GuestBuffer> buffer)
    {
        if (buffer.IsEmpty || buffer.Length > Size)
        {
            ThrowHelper.ThrowArgument(nameof(buffer), "A buffer has 1 to Size elements.");
        }

        ReserveSlots(buffer.Length);
        ushort id = GuestRing.Take(_freeIds, 1);
        ushort first = NextAvail;
        ushort firstFlags = 0;
        for (int i = 0; i < buffer.Length; i++)
        {
            bool last = i + 1 == buffer.Length;
            ushort flags = (ushort)(AvailableFlags(AvailWrap) | (buffer[i].DeviceWritable ? GuestRing.Write : 0) | (last ? 0 : GuestRing.Next));
            if (i == 0)
            {
                // The first descriptor's flags go last: the device never sees a partial list.
                firstFlags = flags;
                flags = 0;
            }

            WriteDescriptor(NextAvail, buffer[i].Address, buffer[i].Length, id, flags);
            Advance();
        }

        GuestRing.Write16(Memory, SlotAddress(first) + 14, firstFlags);
        _slots[id] = buffer.Length;
        _added += (ushort)buffer.Length;
        return id;
    }

    /// <inheritdoc/>
    public override ushort PostIndirect(ulong table, ReadOnlySpan<GuestBuffer> buffer)
    {
        if (buffer.IsEmpty)
        {
            ThrowHelper.ThrowArgument(nameof(buffer), "A buffer has at least one element.");
        }

        for (int i = 0; i < buffer.Length; i++)
        {
            GuestRing.WriteDescriptor(Memory, table + (16UL * (uint)i), buffer[i].Address, buffer[i].Length, 0, buffer[i].DeviceWritable ? GuestRing.Write : (ushort)0);
        }

        ReserveSlots(1);
        ushort id = GuestRing.Take(_freeIds, 1);
        WriteDescriptor(NextAvail, table, 16U * (uint)buffer.Length, id, (ushort)(AvailableFlags(AvailWrap) | GuestRing.Indirect));
        Advance();
        _slots[id] = 1;
        _added++;
        return id;
    }

    /// <summary>Writes ring position <paramref name="position"/> as given (a hostile driver writes what it likes).</summary>
    /// <param name="position">The ring position.</param>
    /// <param name="address">The buffer address.</param>
    /// <param name="length">The buffer length.</param>
    /// <param name="id">The buffer id.</param>
    /// <param name="flags">NEXT 1, WRITE 2, INDIRECT 4, AVAIL 1 &lt;&lt; 7, USED 1 &lt;&lt; 15.</param>
    public void WriteDescriptor(int position, ulong address, uint length, ushort id, ushort flags) =>
        GuestRing.WriteDescriptor(Memory, SlotAddress(position), address, length, id, flags);

    /// <summary>Writes the driver event suppression structure: when the device should interrupt.</summary>
    /// <param name="flags">0 enable, 1 disable, 2 at the descriptor named by <paramref name="offWrap"/>.</param>
    /// <param name="offWrap">The position (bits 0–14) and wrap counter (bit 15) for flags 2.</param>
    public void SetDriverEvent(ushort flags, ushort offWrap = 0)
    {
        GuestRing.Write16(Memory, DriverArea, offWrap);
        GuestRing.Write16(Memory, DriverArea + 2, flags);
    }

    /// <inheritdoc/>
    public override bool KickPrepare()
    {
        ushort old = (ushort)(NextAvail - _added);
        _added = 0;
        ushort flags = DeviceEventFlags;
        if (flags != 2)
        {
            return flags != 1;
        }

        ushort offWrap = DeviceEventOffWrap;
        ushort eventIndex = (ushort)(offWrap & 0x7FFF);
        if (((offWrap & 0x8000) != 0) != AvailWrap)
        {
            eventIndex = (ushort)(eventIndex - Size);
        }

        return GuestRing.NeedEvent(eventIndex, NextAvail, old);
    }

    /// <inheritdoc/>
    public override bool TryTakeUsed(out ushort id, out uint length)
    {
        id = 0;
        length = 0;
        ulong slot = SlotAddress(NextUsed);
        ushort flags = GuestRing.Read16(Memory, slot + 14);
        if (((flags & AvailBit) != 0) != UsedWrap || ((flags & UsedBit) != 0) != UsedWrap)
        {
            return false;
        }

        length = GuestRing.Read32(Memory, slot + 8);
        id = GuestRing.Read16(Memory, slot + 12);
        int slots = id < Size && _slots[id] > 0 ? _slots[id] : 1;
        int next = NextUsed + slots;
        if (next >= Size)
        {
            next -= Size;
            UsedWrap = !UsedWrap;
        }

        NextUsed = (ushort)next;
        _slotsInFlight = Math.Max(0, _slotsInFlight - slots);
        if (id < Size && _slots[id] > 0)
        {
            _slots[id] = 0;
            _freeIds.Push(id);
        }

        return true;
    }

    /// <summary>The ring holds Size descriptors: a list may only be written over slots the device has returned.</summary>
    private void ReserveSlots(int count)
    {
        if (_slotsInFlight + count > Size)
        {
            ThrowHelper.ThrowInvalidOperation("The simulated driver's ring has too few free slots for this buffer.");
        }

        _slotsInFlight += count;
    }

    private void Advance()
    {
        NextAvail++;
        if (NextAvail == Size)
        {
            NextAvail = 0;
            AvailWrap = !AvailWrap;
        }
    }
}
