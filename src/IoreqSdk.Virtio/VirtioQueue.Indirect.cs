using System;
using System.Buffers.Binary;

namespace IoreqSdk.Virtio;

/// <content>Indirect descriptor tables (virtio 1.2 §2.7.5.3, §2.8.7): read once, validated, appended to the chain.</content>
public sealed partial class VirtioQueue
{
    /// <summary>
    /// Reads an indirect table once into the queue's own buffer and appends its entries to the chain. Split tables
    /// are walked through their next fields; packed tables are sequential.
    /// </summary>
    private VirtioQueueError AppendIndirect(VirtioDescriptorChain chain, ulong address, uint length)
    {
        if (length == 0 || length % DescriptorSize != 0)
        {
            return VirtioQueueError.IndirectLengthInvalid;
        }

        uint entries = length / DescriptorSize;
        if (entries > Size)
        {
            return VirtioQueueError.ChainTooLong;
        }

        if (Wraps(address, length))
        {
            return VirtioQueueError.BufferAddressWraps;
        }

        if (_indirectTable.Length < length)
        {
            // At most Size * 16 bytes, grown once to the largest table seen and reused.
            _indirectTable = new byte[Math.Max(length, Math.Min((uint)_indirectTable.Length * 2, (uint)Size * DescriptorSize))];
        }

        Span<byte> table = _indirectTable.AsSpan(0, (int)length);
        if (!_memory!.TryRead(address, table))
        {
            return VirtioQueueError.RingNotInRam;
        }

        uint index = 0;
        for (uint count = 1; ; count++)
        {
            if (count > entries)
            {
                return VirtioQueueError.ChainTooLong;
            }

            // Split entries end { flags, next }; packed ones { id, flags }.
            ReadOnlySpan<byte> entry = table.Slice((int)(index * DescriptorSize), DescriptorSize);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(entry.Slice(IsPacked ? 14 : 12));
            if ((flags & DescIndirect) != 0)
            {
                return VirtioQueueError.NestedIndirect;
            }

            VirtioQueueError error = chain.Add(
                BinaryPrimitives.ReadUInt64LittleEndian(entry),
                BinaryPrimitives.ReadUInt32LittleEndian(entry.Slice(8)),
                (flags & DescWrite) != 0);
            if (error != VirtioQueueError.None)
            {
                return error;
            }

            if (IsPacked)
            {
                // Packed tables are sequential; only WRITE means anything there (packed ring, indirect flag).
                if (count == entries)
                {
                    return VirtioQueueError.None;
                }

                index++;
                continue;
            }

            if ((flags & DescNext) == 0)
            {
                return VirtioQueueError.None;
            }

            index = BinaryPrimitives.ReadUInt16LittleEndian(entry.Slice(14));
            if (index >= entries)
            {
                return VirtioQueueError.DescriptorIndexOutOfRange;
            }
        }
    }
}
