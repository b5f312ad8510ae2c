using System;
using System.Buffers.Binary;

namespace IoreqSdk.Virtio;

/// <summary>The split layout (virtio 1.2 §2.7): descriptor table, available ring (driver area), used ring (device area).</summary>
public sealed partial class VirtioQueue
{
    // Available ring: le16 flags; le16 idx; le16 ring[Size]; le16 used_event.
    private const ulong AvailIdxOffset = 2;
    private const ulong AvailRingOffset = 4;
    private const ushort AvailNoInterrupt = 1;

    // Used ring: le16 flags; le16 idx; { le32 id; le32 len } ring[Size]; le16 avail_event.
    private const ulong UsedIdxOffset = 2;
    private const ulong UsedRingOffset = 4;
    private const ushort UsedNoNotify = 1;

    // Free-running 16-bit indices, as the rings hold them.
    private ushort _nextAvail;
    private ushort _availSeen;
    private ushort _nextUsed;

    private ulong UsedEventAddress => DriverArea + AvailRingOffset + (2UL * Size);

    private ulong AvailEventAddress => DeviceArea + UsedRingOffset + (8UL * Size);

    private void ResetSplit()
    {
        _nextAvail = 0;
        _availSeen = 0;
        _nextUsed = 0;
    }

    private bool SplitTryPop(VirtioDescriptorChain chain)
    {
        bool inPlace = RingsInPlace();
        if (_nextAvail == _availSeen)
        {
            ushort published;
            if (inPlace)
            {
                published = ReadPublishedAvailInPlace();
            }
            else if (!ReadU16(DriverArea + AvailIdxOffset, out published))
            {
                return Break(VirtioQueueError.RingNotInRam);
            }

            // A driver has at most Size buffers outstanding; an index further ahead is garbage.
            if ((ushort)(published - _nextAvail) > Size)
            {
                return Break(VirtioQueueError.AvailIndexJump);
            }

            if (published == _nextAvail)
            {
                return false;
            }

            if (!inPlace)
            {
                // Acquire, for a copied index: the driver wrote the ring entries and descriptors, then avail.idx behind
                // a write barrier; none of them may be read before the index that published them. (In place, the
                // volatile load is the acquire.)
                VirtioBarriers.AfterPublishedIndexRead();
            }

            _availSeen = published;
        }

        ulong slot = (ulong)(_nextAvail & (Size - 1));
        ushort head;
        if (inPlace)
        {
            head = ReadAvailEntryInPlace(slot);
        }
        else if (!ReadU16(DriverArea + AvailRingOffset + (2 * slot), out head))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        chain.Begin(_memory!, _epoch);
        VirtioQueueError error = ReadSplitChain(chain, head, inPlace);
        if (error != VirtioQueueError.None)
        {
            return Fail(chain, error);
        }

        _nextAvail++;
        if (_eventIndex && _notificationsEnabled)
        {
            // An indirect table's copy may have evicted a ring's frame: in place only if the rings still are.
            if (inPlace && RingsInPlace())
            {
                WriteAvailEventInPlace(_nextAvail);
            }
            else if (!WriteU16(AvailEventAddress, _nextAvail))
            {
                // Publishing avail_event (kick me when you pass the buffer after this one) failed: the ring is not RAM.
                return Fail(chain, VirtioQueueError.RingNotInRam);
            }
        }

        chain.Complete(this, head);
        return true;
    }

    /// <summary>Walks a chain from <paramref name="head"/>, one 16-byte copy per descriptor, into the chain's own arrays.</summary>
    private VirtioQueueError ReadSplitChain(VirtioDescriptorChain chain, ushort head, bool inPlace)
    {
        if (head >= Size)
        {
            return VirtioQueueError.DescriptorIndexOutOfRange;
        }

        ushort index = head;
        for (int count = 1; ; count++)
        {
            // Size descriptors at most: a next-loop ends here.
            if (count > Size)
            {
                return VirtioQueueError.ChainTooLong;
            }

            SplitDescriptor descriptor;
            if (inPlace)
            {
                descriptor = ReadDescriptorInPlace(index);
            }
            else if (!TryCopyDescriptor(index, out descriptor))
            {
                return VirtioQueueError.RingNotInRam;
            }

            ulong address = descriptor.Address;
            uint length = descriptor.Length;
            ushort flags = descriptor.Flags;
            ushort next = descriptor.Next;
            chain.RingSlots = count;

            if ((flags & DescIndirect) != 0)
            {
                // Zero or more direct descriptors may precede one indirect descriptor, which ends the chain (the
                // split ring's indirect-descriptor device requirements).
                if (!_indirect)
                {
                    return VirtioQueueError.IndirectNotNegotiated;
                }

                if ((flags & DescNext) != 0)
                {
                    return VirtioQueueError.IndirectWithNext;
                }

                return AppendIndirect(chain, address, length);
            }

            VirtioQueueError error = chain.Add(address, length, (flags & DescWrite) != 0);
            if (error != VirtioQueueError.None || (flags & DescNext) == 0)
            {
                return error;
            }

            if (next >= Size)
            {
                return VirtioQueueError.DescriptorIndexOutOfRange;
            }

            index = next;
        }
    }

    /// <summary>One descriptor, copied once out of guest memory (the driver may rewrite it).</summary>
    private bool TryCopyDescriptor(ushort index, out SplitDescriptor descriptor)
    {
        Span<byte> bytes = stackalloc byte[DescriptorSize];
        if (!_memory!.TryRead(DescriptorArea + ((ulong)index * DescriptorSize), bytes))
        {
            descriptor = default;
            return false;
        }

        descriptor = new SplitDescriptor(
            BinaryPrimitives.ReadUInt64LittleEndian(bytes),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(8)),
            BinaryPrimitives.ReadUInt16LittleEndian(bytes.Slice(12)),
            BinaryPrimitives.ReadUInt16LittleEndian(bytes.Slice(14)));
        return true;
    }

    private bool SplitPush(VirtioDescriptorChain chain, uint bytesWritten)
    {
        if (RingsInPlace())
        {
            PushInPlace(chain.Id, bytesWritten);
            _usedSinceSignal++;
            return true;
        }

        Span<byte> element = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(element, chain.Id);
        BinaryPrimitives.WriteUInt32LittleEndian(element.Slice(4), bytesWritten);
        ulong slot = (ulong)(_nextUsed & (Size - 1));
        if (!_memory!.TryWrite(DeviceArea + UsedRingOffset + (8 * slot), element))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        _nextUsed++;

        // Release, for copies: the element must be visible before the used.idx that publishes it; the driver reads
        // idx, then (after its read barrier) the element.
        VirtioBarriers.BeforePublish();
        if (!WriteU16(DeviceArea + UsedIdxOffset, _nextUsed))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        _usedSinceSignal++;
        return true;
    }

    private bool SplitNeedsNotification()
    {
        bool inPlace = RingsInPlace();
        if (_eventIndex)
        {
            ushort usedEvent;
            if (inPlace)
            {
                usedEvent = ReadUsedEventInPlace();
            }
            else if (!ReadU16(UsedEventAddress, out usedEvent))
            {
                return Break(VirtioQueueError.RingNotInRam);
            }

            // More than 2^16 entries since the last decision and the 16-bit window is meaningless: notify.
            ushort old = (ushort)(_nextUsed - _usedSinceSignal);
            return _usedSinceSignal > ushort.MaxValue || NeedEvent(usedEvent, _nextUsed, old);
        }

        ushort flags;
        if (inPlace)
        {
            flags = ReadAvailFlagsInPlace();
        }
        else if (!ReadU16(DriverArea, out flags))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        return (flags & AvailNoInterrupt) == 0;
    }

    private void SplitDisableNotifications()
    {
        // With EVENT_IDX, not moving avail_event on is the suppression (SplitTryPop stops publishing it).
        if (!_eventIndex && !WriteU16(DeviceArea, UsedNoNotify))
        {
            Break(VirtioQueueError.RingNotInRam);
        }
    }

    private bool SplitEnableNotifications()
    {
        bool written = _eventIndex ? WriteU16(AvailEventAddress, _nextAvail) : WriteU16(DeviceArea, 0);
        if (!written)
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        // Full fence: the re-enabled notification must be visible before avail.idx is read again, or a buffer the
        // driver posts in between (seeing notifications still off) is neither kicked nor seen here.
        VirtioBarriers.StoreThenLoad();
        if (!ReadU16(DriverArea + AvailIdxOffset, out ushort published))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        if (published == _nextAvail)
        {
            return false;
        }

        // Keep what was seen, so the caller's next TryPop consumes it rather than re-reading an index the guest may
        // have moved back: "more work" always means progress, and a racing guest cannot spin the drain loop.
        if ((ushort)(published - _nextAvail) > Size)
        {
            return Break(VirtioQueueError.AvailIndexJump);
        }

        VirtioBarriers.AfterPublishedIndexRead();
        _availSeen = published;
        return true;
    }
}
