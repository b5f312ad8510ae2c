using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool SplitTryPop(VirtioDescriptorChain chain)
    {
        bool inPlace = RingsInPlace();
        if (_nextAvail == _availSeen)
        {
            // The copies through an out-of-line helper: a local passed by reference (ReadU16's out) would live on
            // this method's stack, zeroed at every call, and the in-place path would store and reload through it.
            ushort published;
            if (inPlace)
            {
                published = ReadPublishedAvailInPlace();
            }
            else
            {
                int copied = ReadU16Copied(DriverArea + AvailIdxOffset);
                if (copied < 0)
                {
                    return Break(VirtioQueueError.RingNotInRam);
                }

                published = (ushort)copied;
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

        // Before the head is read: Begin has calls on its rare paths, and a head read before them would be kept on the
        // stack across them and reloaded at the start of the walk, a store-and-reload on its chain of dependent loads.
        chain.Begin(_memory!, _epoch);
        ulong slot = (ulong)(_nextAvail & (Size - 1));
        ushort head;
        if (inPlace)
        {
            head = ReadAvailEntryInPlace(slot);
        }
        else
        {
            int copied = ReadU16Copied(DriverArea + AvailRingOffset + (2 * slot));
            if (copied < 0)
            {
                return Fail(chain, VirtioQueueError.RingNotInRam);
            }

            head = (ushort)copied;
        }

        VirtioQueueError error;
        if (inPlace)
        {
            error = ReadSplitChainInPlace(chain, head);
            if (error == VirtioDescriptorChain.ArraysFull)
            {
                // A chain longer than any before on this chain object: walked again from its head by the copying walk,
                // which grows the arrays as it goes (once, however long the chain). Nothing of the first walk was used
                // (ArraysFull ends it at a direct descriptor, before any indirect table), so the second is a fresh
                // single read of the chain, as if popped a moment later; through copies, it needs no ring pointer.
                chain.Begin(_memory!, _epoch);
                error = ReadSplitChain(chain, head);
            }
        }
        else
        {
            error = ReadSplitChain(chain, head);
        }

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

    /// <summary>Walks a chain from <paramref name="head"/> through copies, one per descriptor, into the chain's own arrays.</summary>
    private VirtioQueueError ReadSplitChain(VirtioDescriptorChain chain, ushort head)
    {
        // Appends from empty (also after an in-place walk that found the arrays too small).
        chain.ClearParts();
        uint size = Size;
        if (head >= size)
        {
            return VirtioQueueError.DescriptorIndexOutOfRange;
        }

        uint index = head;
        for (int count = 1; ; count++)
        {
            // Size descriptors at most: a next-loop ends here.
            if (count > size)
            {
                return VirtioQueueError.ChainTooLong;
            }

            if (!TryCopyDescriptor(index, out CopiedDescriptor descriptor))
            {
                return VirtioQueueError.RingNotInRam;
            }

            VirtioQueueError error = AppendSplitDescriptor(chain, descriptor.Address, descriptor.Length, descriptor.FlagsAndNext);
            if (error != VirtioQueueError.None || (descriptor.FlagsAndNext & DescNext) == 0)
            {
                return error;
            }

            uint next = descriptor.FlagsAndNext >> 16;
            if (next >= size)
            {
                return VirtioQueueError.DescriptorIndexOutOfRange;
            }

            index = next;
        }
    }

    /// <summary>
    /// Walks a chain from <paramref name="head"/> in the mapped descriptor table, each descriptor read once, into the
    /// chain's own arrays; <see cref="VirtioDescriptorChain.ArraysFull"/> when they need to grow first.
    /// </summary>
    /// <remarks>
    /// The walk is a chain of dependent loads (next, then its descriptor, then its next), kept in registers: each field
    /// loaded straight into a local, no struct copy, no out parameter, no call in the loop (with one, even on a rare
    /// path, the JIT spilled the walk's values to the stack in the profile, and a store-and-reload on each link was half
    /// the pop's time; the indirect descriptor's table is read after the loop). The segment arrays, counts and lengths are
    /// locals too, stored into the chain once at the end: per descriptor, only the segment itself is stored (through the
    /// chain's fields, each append was a load and a store of its count and of its length more). Each field is loaded once
    /// and never read from the table again: the driver may rewrite the descriptor meanwhile, and the .NET runtime's memory
    /// model (docs/design/specs/Memory-model.md in dotnet/runtime: "reads cannot be introduced") keeps CoreCLR's and
    /// NativeAOT's JIT from reading it a second time.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe VirtioQueueError ReadSplitChainInPlace(VirtioDescriptorChain chain, ushort head)
    {
        uint size = Size;
        if (head >= size)
        {
            return VirtioQueueError.DescriptorIndexOutOfRange;
        }

        VirtioBufferSegment[] readable = chain.ReadableSegments;
        VirtioBufferSegment[] writable = chain.WritableSegments;
        int readableCount = 0;
        int writableCount = 0;
        ulong readableLength = 0;
        ulong writableLength = 0;
        byte* table = _descriptorRing;
        uint index = head;
        ulong address = 0;
        uint length = 0;
        VirtioQueueError error;
        for (uint count = 1; ; count++)
        {
            // Size descriptors at most: a next-loop ends here.
            if (count > size)
            {
                error = VirtioQueueError.ChainTooLong;
                break;
            }

            // flags and next in one little-endian 32-bit load (in place only on little-endian hosts: MapRings).
            byte* descriptor = table + (index * DescriptorSize);
            address = *(ulong*)descriptor;
            length = *(uint*)(descriptor + 8);
            uint flagsAndNext = *(uint*)(descriptor + 12);
            if ((flagsAndNext & DescIndirect) != 0)
            {
                // Zero or more direct descriptors may precede one indirect descriptor, which ends the chain (the split
                // ring's indirect-descriptor device requirements); its table is read after the loop.
                error = !_indirect ? VirtioQueueError.IndirectNotNegotiated
                    : (flagsAndNext & DescNext) != 0 ? VirtioQueueError.IndirectWithNext
                    : IndirectPending;
                break;
            }

            if (length != 0 && address > ulong.MaxValue - (length - 1))
            {
                error = VirtioQueueError.BufferAddressWraps;
                break;
            }

            if ((flagsAndNext & DescWrite) != 0)
            {
                // One comparison both finds room and proves the store in bounds (the JIT drops its own check for it).
                if ((uint)writableCount >= (uint)writable.Length)
                {
                    error = VirtioDescriptorChain.ArraysFull;
                    break;
                }

                writable[writableCount++] = new VirtioBufferSegment(address, length);
                writableLength += length;
            }
            else
            {
                if (writableCount != 0)
                {
                    error = VirtioQueueError.WritableBeforeReadable;
                    break;
                }

                if ((uint)readableCount >= (uint)readable.Length)
                {
                    error = VirtioDescriptorChain.ArraysFull;
                    break;
                }

                readable[readableCount++] = new VirtioBufferSegment(address, length);
                readableLength += length;
            }

            if ((flagsAndNext & DescNext) == 0)
            {
                error = VirtioQueueError.None;
                break;
            }

            index = flagsAndNext >> 16;
            if (index >= size)
            {
                error = VirtioQueueError.DescriptorIndexOutOfRange;
                break;
            }
        }

        chain.SetParts(readableCount, readableLength, writableCount, writableLength);
        return error == IndirectPending ? AppendIndirect(chain, address, length) : error;
    }

    /// <summary>Internal to the in-place walk: it ended at an indirect descriptor whose table is read next.</summary>
    private const VirtioQueueError IndirectPending = (VirtioQueueError)(-2);

    /// <summary>
    /// One descriptor of a split chain, for the copying walk: appended to the chain (its arrays grown if need be), or, if
    /// indirect, its table, which ends the chain. (The split ring never reads the chain's ring slots: only the packed one.)
    /// </summary>
    private VirtioQueueError AppendSplitDescriptor(VirtioDescriptorChain chain, ulong address, uint length, uint flagsAndNext)
    {
        if ((flagsAndNext & DescIndirect) != 0)
        {
            // Zero or more direct descriptors may precede one indirect descriptor, which ends the chain (the split
            // ring's indirect-descriptor device requirements).
            if (!_indirect)
            {
                return VirtioQueueError.IndirectNotNegotiated;
            }

            if ((flagsAndNext & DescNext) != 0)
            {
                return VirtioQueueError.IndirectWithNext;
            }

            return AppendIndirect(chain, address, length);
        }

        return chain.Add(address, length, (flagsAndNext & DescWrite) != 0);
    }

    /// <summary>A 16-bit ring field through a copy: its value, or -1 if it is not guest RAM.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ReadU16Copied(ulong address) => ReadU16(address, out ushort value) ? value : -1;

    /// <summary>One descriptor, copied once out of guest memory (the driver may rewrite it).</summary>
    private bool TryCopyDescriptor(uint index, out CopiedDescriptor descriptor)
    {
        Span<byte> bytes = stackalloc byte[DescriptorSize];
        if (!_memory!.TryRead(DescriptorArea + ((ulong)index * DescriptorSize), bytes))
        {
            descriptor = default;
            return false;
        }

        descriptor = new CopiedDescriptor(
            BinaryPrimitives.ReadUInt64LittleEndian(bytes),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(8)),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes.Slice(12)));
        return true;
    }

    // Inlined into Push: in place, a push is a few stores; the copies stay out of line.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool SplitPush(VirtioDescriptorChain chain, uint bytesWritten)
    {
        if (RingsInPlace())
        {
            PushInPlace(chain.Id, bytesWritten);
            _usedSinceSignal++;
            return true;
        }

        return SplitPushCopied(chain, bytesWritten);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool SplitPushCopied(VirtioDescriptorChain chain, uint bytesWritten)
    {
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

    /// <summary>A split descriptor copied out of guest memory: address, length, and flags | next &lt;&lt; 16.</summary>
    private readonly struct CopiedDescriptor
    {
        public readonly ulong Address;
        public readonly uint Length;
        public readonly uint FlagsAndNext;

        public CopiedDescriptor(ulong address, uint length, uint flagsAndNext)
        {
            Address = address;
            Length = length;
            FlagsAndNext = flagsAndNext;
        }
    }
}
