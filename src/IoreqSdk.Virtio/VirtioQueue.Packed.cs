using System;
using System.Buffers.Binary;

namespace IoreqSdk.Virtio;

/// <summary>
/// The packed layout (virtio 1.2 §2.8): one descriptor ring that both sides write, with wrap counters in the AVAIL and
/// USED flag bits; the driver area is the driver event suppression structure, the device area the device's.
/// </summary>
public sealed partial class VirtioQueue
{
    private const ushort PackedAvail = 1 << 7;
    private const ushort PackedUsed = 1 << 15;

    // Event suppression: le16 off_wrap (offset 0..14, wrap counter in bit 15); le16 flags.
    private const ushort EventFlagsEnable = 0;
    private const ushort EventFlagsDisable = 1;
    private const ushort EventFlagsDesc = 2;

    // Ring positions (0..Size-1) and the wrap counters, which start at 1 (§2.8.1).
    private ushort _availPosition;
    private bool _availWrap;
    private ushort _usedPosition;
    private bool _usedWrap;

    // EnableNotifications saw the next descriptor available; it may not become unavailable again before it is used.
    private bool _nextSeenAvailable;

    private void ResetPacked()
    {
        _availPosition = 0;
        _availWrap = true;
        _usedPosition = 0;
        _usedWrap = true;
        _nextSeenAvailable = false;
    }

    /// <summary>Available: AVAIL matches the wrap counter and USED does not (§2.8.1).</summary>
    private static bool IsAvailable(ushort flags, bool wrap) =>
        ((flags & PackedAvail) != 0) == wrap && ((flags & PackedUsed) != 0) != wrap;

    private bool PackedTryPop(VirtioDescriptorChain chain)
    {
        ulong first = DescriptorArea + ((ulong)_availPosition * DescriptorSize);
        if (!ReadU16(first + 14, out ushort firstFlags))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        if (!IsAvailable(firstFlags, _availWrap))
        {
            // A descriptor the driver made available cannot be taken back (the packed ring's descriptor-table driver
            // rules); one that seems to was flipped by a racing guest, which would otherwise spin the drain loop
            // (EnableNotifications says "more").
            return _nextSeenAvailable ? Break(VirtioQueueError.PackedWrapCounterMismatch) : false;
        }

        _nextSeenAvailable = false;

        // Acquire: the driver writes the whole list, then the first descriptor's flags behind a write barrier; the
        // rest of the list may not be read before those flags.
        VirtioBarriers.AfterPublishedIndexRead();

        chain.Begin(_memory!, _epoch);
        chain.ClearParts();
        Span<byte> descriptor = stackalloc byte[DescriptorSize];
        ushort position = _availPosition;
        bool wrap = _availWrap;
        ushort id;
        for (int count = 1; ; count++)
        {
            if (count > Size)
            {
                return Fail(chain, VirtioQueueError.ChainTooLong);
            }

            if (!_memory!.TryRead(DescriptorArea + ((ulong)position * DescriptorSize), descriptor))
            {
                return Fail(chain, VirtioQueueError.RingNotInRam);
            }

            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(descriptor.Slice(14));

            // Every descriptor of the list carries the AVAIL/USED bits of its own lap (packed ring, next flag); the first was checked
            // above, and is checked again here since this copy is the one that is used.
            if (!IsAvailable(flags, wrap))
            {
                return Fail(chain, VirtioQueueError.PackedWrapCounterMismatch);
            }

            ulong address = BinaryPrimitives.ReadUInt64LittleEndian(descriptor);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(descriptor.Slice(8));
            id = BinaryPrimitives.ReadUInt16LittleEndian(descriptor.Slice(12));
            chain.RingSlots = count;
            position++;
            if (position == Size)
            {
                position = 0;
                wrap = !wrap;
            }

            VirtioQueueError error;
            if ((flags & DescIndirect) != 0)
            {
                if (!_indirect)
                {
                    return Fail(chain, VirtioQueueError.IndirectNotNegotiated);
                }

                if ((flags & DescNext) != 0)
                {
                    return Fail(chain, VirtioQueueError.IndirectWithNext);
                }

                // A list is all direct descriptors or one indirect one (packed ring, scatter-gather).
                if (count != 1)
                {
                    return Fail(chain, VirtioQueueError.MixedIndirectChain);
                }

                error = AppendIndirect(chain, address, length);
                if (error != VirtioQueueError.None)
                {
                    return Fail(chain, error);
                }

                break;
            }

            error = chain.Add(address, length, (flags & DescWrite) != 0);
            if (error != VirtioQueueError.None)
            {
                return Fail(chain, error);
            }

            if ((flags & DescNext) == 0)
            {
                break;
            }
        }

        _availPosition = position;
        _availWrap = wrap;
        if (_eventIndex && _notificationsEnabled && !WriteDeviceEvent(EventFlagsDesc))
        {
            return Fail(chain, VirtioQueueError.RingNotInRam);
        }

        // The buffer id is the last descriptor's (packed ring, next flag).
        chain.Complete(this, id);
        return true;
    }

    private bool PackedPush(VirtioDescriptorChain chain, uint bytesWritten)
    {
        // The used descriptor goes in the next used slot, whatever buffer it is; the driver skips ahead by the
        // buffer's descriptor count, and so does the device.
        ulong slot = DescriptorArea + ((ulong)_usedPosition * DescriptorSize);
        Span<byte> body = stackalloc byte[6];
        BinaryPrimitives.WriteUInt32LittleEndian(body, bytesWritten);
        BinaryPrimitives.WriteUInt16LittleEndian(body.Slice(4), chain.Id);
        if (!_memory!.TryWrite(slot + 8, body))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        // Release: length and id must be visible before the flags that mark the descriptor used; the driver reads
        // the flags, then (after its read barrier) the rest.
        VirtioBarriers.BeforePublish();
        ushort flags = _usedWrap ? (ushort)(PackedAvail | PackedUsed) : (ushort)0;
        if (bytesWritten != 0)
        {
            flags |= DescWrite;
        }

        if (!WriteU16(slot + 14, flags))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        int next = _usedPosition + chain.RingSlots;
        if (next >= Size)
        {
            next -= Size;
            _usedWrap = !_usedWrap;
        }

        _usedPosition = (ushort)next;
        _usedSinceSignal += chain.RingSlots;
        return true;
    }

    private bool PackedNeedsNotification()
    {
        Span<byte> suppression = stackalloc byte[4];
        if (!_memory!.TryRead(DriverArea, suppression))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        ushort offWrap = BinaryPrimitives.ReadUInt16LittleEndian(suppression);
        ushort mode = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(suppression.Slice(2)) & 3);
        if (mode == EventFlagsDisable)
        {
            return false;
        }

        if (mode != EventFlagsDesc || !_eventIndex || _usedSinceSignal >= Size)
        {
            // ENABLE, the reserved value 3, DESC without EVENT_IDX, or a whole lap since the last decision: notify.
            return true;
        }

        // The event names a ring position and the lap (wrap counter) it belongs to. An event in the previous lap is
        // that position minus Size in the same 16-bit arithmetic as the old and new used positions.
        ushort eventPosition = (ushort)(offWrap & 0x7FFF);
        if (((offWrap & 0x8000) != 0) != _usedWrap)
        {
            eventPosition = (ushort)(eventPosition - Size);
        }

        ushort old = (ushort)(_usedPosition - _usedSinceSignal);
        return NeedEvent(eventPosition, _usedPosition, old);
    }

    private void PackedDisableNotifications()
    {
        if (!WriteDeviceEvent(EventFlagsDisable))
        {
            Break(VirtioQueueError.RingNotInRam);
        }
    }

    private bool PackedEnableNotifications()
    {
        if (!WriteDeviceEvent(_eventIndex ? EventFlagsDesc : EventFlagsEnable))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        // Full fence: the re-enabled event must be visible before the next descriptor's flags are read again (see
        // SplitEnableNotifications).
        VirtioBarriers.StoreThenLoad();
        if (!ReadU16(DescriptorArea + ((ulong)_availPosition * DescriptorSize) + 14, out ushort flags))
        {
            return Break(VirtioQueueError.RingNotInRam);
        }

        _nextSeenAvailable = IsAvailable(flags, _availWrap);
        return _nextSeenAvailable;
    }

    /// <summary>Writes the device event suppression structure: the next position to be made available (with its lap) and the mode.</summary>
    private bool WriteDeviceEvent(ushort mode)
    {
        Span<byte> suppression = stackalloc byte[4];
        ushort offWrap = (ushort)(_availPosition | (_availWrap ? 0x8000 : 0));
        BinaryPrimitives.WriteUInt16LittleEndian(suppression, offWrap);
        BinaryPrimitives.WriteUInt16LittleEndian(suppression.Slice(2), mode);
        return _memory!.TryWrite(DeviceArea, suppression);
    }
}
