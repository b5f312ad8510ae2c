using System;
using System.Buffers.Binary;
using IoreqSdk.Memory;

namespace IoreqSdk.Fuzzing;

/// <summary>A hostile driver's raw stores into its rings and tables (little-endian, as virtio 1.x lays them out).</summary>
internal static class GuestRingBytes
{
    /// <summary>A 16-byte descriptor (split: addr, len, flags, next; packed: addr, len, id, flags).</summary>
    public static void WriteDescriptor(IGuestMemory memory, ulong at, ulong address, uint length, ushort third, ushort fourth)
    {
        Span<byte> entry = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(entry, address);
        BinaryPrimitives.WriteUInt32LittleEndian(entry.Slice(8), length);
        BinaryPrimitives.WriteUInt16LittleEndian(entry.Slice(12), third);
        BinaryPrimitives.WriteUInt16LittleEndian(entry.Slice(14), fourth);
        memory.TryWrite(at, entry);
    }

    /// <summary>Four bytes anywhere (ignored outside RAM).</summary>
    public static void TryWrite32(IGuestMemory memory, ulong at, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        memory.TryWrite(at, bytes);
    }
}
