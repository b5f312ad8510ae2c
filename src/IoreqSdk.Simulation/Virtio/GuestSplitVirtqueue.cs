using System;
using System.Collections.Generic;
using IoreqSdk.Memory;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>
/// The driver side of a split virtqueue, as Linux's virtio_ring drives one, for testing a virtio device without a
/// guest: a free list of descriptors, each chain written before its ring entry, avail.idx published last, used_event
/// written after taking used buffers (with VIRTIO_F_EVENT_IDX), the kick decided from avail_event or the device's
/// no-notify flag. Raw writes let a test play a hostile driver.
/// </summary>
/// <remarks>Single-threaded, like the tests it serves; its steady state allocates nothing.</remarks>
public sealed class GuestSplitVirtqueue : GuestVirtqueue
{
    private readonly Stack<ushort> _free;
    private readonly int[] _chainLength;

    // The driver's own record of each chain's links: a used buffer's descriptors go back on the free list by these,
    // never by the next fields in guest RAM, which a hostile party (or a device) may have rewritten meanwhile.
    private readonly ushort[] _nextOf;
    private ushort _added;

    /// <summary>Sets up the driver's view of a queue whose rings the caller has placed (and zeroed) in guest memory.</summary>
    /// <param name="memory">Guest RAM.</param>
    /// <param name="size">The queue size (a power of two, 1 to 32768).</param>
    /// <param name="descriptorArea">The descriptor table (16-aligned).</param>
    /// <param name="driverArea">The available ring (2-aligned).</param>
    /// <param name="deviceArea">The used ring (4-aligned).</param>
    /// <param name="eventIndex">Whether VIRTIO_F_EVENT_IDX was negotiated.</param>
    public GuestSplitVirtqueue(IGuestMemory memory, ushort size, ulong descriptorArea, ulong driverArea, ulong deviceArea, bool eventIndex)
        : base(memory, size, descriptorArea, driverArea, deviceArea)
    {
        if ((size & (size - 1)) != 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A split queue's size is a power of two.");
        }

        EventIndex = eventIndex;
        _chainLength = new int[size];
        _nextOf = new ushort[size];
        _free = GuestRing.FreeList(size);
    }

    /// <summary>Whether event-index suppression is in use.</summary>
    public bool EventIndex { get; }

    /// <summary>The driver's available index (the next value it publishes minus one).</summary>
    public ushort AvailIndex { get; private set; }

    /// <summary>The next used index the driver will read.</summary>
    public ushort LastUsed { get; private set; }

    /// <summary>How many descriptors are free.</summary>
    public int FreeDescriptors => _free.Count;

    /// <summary>The used index the device published.</summary>
    public ushort UsedIndex => GuestRing.Read16(Memory, DeviceArea + 2);

    /// <summary>The used ring's flags (VIRTQ_USED_F_NO_NOTIFY is 1).</summary>
    public ushort UsedFlags => GuestRing.Read16(Memory, DeviceArea);

    /// <summary>The avail_event the device published (after the used ring).</summary>
    public ushort AvailEvent => GuestRing.Read16(Memory, DeviceArea + 4 + (8UL * Size));

    /// <summary>The address of descriptor <paramref name="index"/>.</summary>
    /// <param name="index">The descriptor index.</param>
    /// <returns>Its guest-physical address.</returns>
    public ulong DescriptorAddress(int index) => DescriptorArea + (16UL * (uint)index);

    /// <inheritdoc/>
    public override ushort Post(ReadOnlySpan<GuestBuffer> buffer)
    {
        if (buffer.IsEmpty)
        {
            ThrowHelper.ThrowArgument(nameof(buffer), "A buffer has at least one element.");
        }

        ushort head = GuestRing.Take(_free, buffer.Length);
        ushort index = head;
        for (int i = 0; i < buffer.Length; i++)
        {
            bool last = i + 1 == buffer.Length;
            ushort next = last ? (ushort)0 : _free.Pop();
            ushort flags = (ushort)((buffer[i].DeviceWritable ? GuestRing.Write : 0) | (last ? 0 : GuestRing.Next));
            WriteDescriptor(index, buffer[i].Address, buffer[i].Length, flags, next);
            _nextOf[index] = next;
            index = next;
        }

        _chainLength[head] = buffer.Length;
        PublishHead(head);
        return head;
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
            bool last = i + 1 == buffer.Length;
            ushort flags = (ushort)((buffer[i].DeviceWritable ? GuestRing.Write : 0) | (last ? 0 : GuestRing.Next));
            GuestRing.WriteDescriptor(Memory, table + (16UL * (uint)i), buffer[i].Address, buffer[i].Length, flags, last ? (ushort)0 : (ushort)(i + 1));
        }

        ushort head = GuestRing.Take(_free, 1);
        WriteDescriptor(head, table, 16U * (uint)buffer.Length, GuestRing.Indirect, 0);
        _chainLength[head] = 1;
        PublishHead(head);
        return head;
    }

    /// <summary>Writes descriptor <paramref name="index"/> as given (a hostile driver writes what it likes).</summary>
    /// <param name="index">The descriptor index.</param>
    /// <param name="address">The buffer address.</param>
    /// <param name="length">The buffer length.</param>
    /// <param name="flags">NEXT 1, WRITE 2, INDIRECT 4.</param>
    /// <param name="next">The next index.</param>
    public void WriteDescriptor(int index, ulong address, uint length, ushort flags, ushort next) =>
        GuestRing.WriteDescriptor(Memory, DescriptorAddress(index), address, length, flags, next);

    /// <summary>Puts <paramref name="head"/> in the next available slot, then publishes the new available index.</summary>
    /// <param name="head">Any head index (a hostile driver may name one out of range).</param>
    public void PublishHead(ushort head)
    {
        GuestRing.Write16(Memory, DriverArea + 4 + (2UL * (uint)(AvailIndex & (Size - 1))), head);
        AvailIndex++;
        _added++;
        GuestRing.Write16(Memory, DriverArea + 2, AvailIndex);
    }

    /// <summary>Writes avail.idx as given, without posting anything (a hostile driver).</summary>
    /// <param name="value">The index to write.</param>
    public void SetAvailIndex(ushort value) => GuestRing.Write16(Memory, DriverArea + 2, value);

    /// <summary>Writes used_event (after the available ring): interrupt me once the used index passes it.</summary>
    /// <param name="value">The used index to be told about.</param>
    public void SetUsedEvent(ushort value) => GuestRing.Write16(Memory, DriverArea + 4 + (2UL * Size), value);

    /// <summary>Sets or clears VIRTQ_AVAIL_F_NO_INTERRUPT.</summary>
    /// <param name="suppress">Whether to ask the device not to interrupt.</param>
    public void SuppressInterrupts(bool suppress) => GuestRing.Write16(Memory, DriverArea, suppress ? (ushort)1 : (ushort)0);

    /// <inheritdoc/>
    public override bool KickPrepare()
    {
        ushort old = (ushort)(AvailIndex - _added);
        _added = 0;
        return EventIndex ? GuestRing.NeedEvent(AvailEvent, AvailIndex, old) : (UsedFlags & 1) == 0;
    }

    /// <inheritdoc/>
    public override bool TryTakeUsed(out ushort id, out uint length)
    {
        id = 0;
        length = 0;
        if (LastUsed == UsedIndex)
        {
            return false;
        }

        ulong element = DeviceArea + 4 + (8UL * (uint)(LastUsed & (Size - 1)));
        uint rawId = GuestRing.Read32(Memory, element);
        length = GuestRing.Read32(Memory, element + 4);
        LastUsed++;
        id = (ushort)rawId;
        if (rawId < Size)
        {
            ushort index = id;
            int count = _chainLength[index];
            _chainLength[index] = 0;
            for (int i = 0; i < count; i++)
            {
                _free.Push(index);
                index = _nextOf[index];
            }
        }

        if (EventIndex)
        {
            // Interrupt me for the next used buffer, as Linux does after taking one.
            SetUsedEvent(LastUsed);
        }

        return true;
    }
}
