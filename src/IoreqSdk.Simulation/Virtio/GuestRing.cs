using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using IoreqSdk.Memory;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>Little-endian ring accesses for the simulated guest drivers; guest RAM that is not there is a test-setup error.</summary>
internal static class GuestRing
{
    public const ushort Next = 1;
    public const ushort Write = 2;
    public const ushort Indirect = 4;

    public static ushort Read16(IGuestMemory memory, ulong address)
    {
        Span<byte> bytes = stackalloc byte[2];
        Require(memory.TryRead(address, bytes), address);
        return BinaryPrimitives.ReadUInt16LittleEndian(bytes);
    }

    public static uint Read32(IGuestMemory memory, ulong address)
    {
        Span<byte> bytes = stackalloc byte[4];
        Require(memory.TryRead(address, bytes), address);
        return BinaryPrimitives.ReadUInt32LittleEndian(bytes);
    }

    public static void Write16(IGuestMemory memory, ulong address, ushort value)
    {
        Span<byte> bytes = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        Require(memory.TryWrite(address, bytes), address);
    }

    /// <summary>Writes one 16-byte descriptor: address, length, then two 16-bit fields (split: flags, next; packed: id, flags).</summary>
    public static void WriteDescriptor(IGuestMemory memory, ulong address, ulong buffer, uint length, ushort third, ushort fourth)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, buffer);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.Slice(8), length);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.Slice(12), third);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.Slice(14), fourth);
        Require(memory.TryWrite(address, bytes), address);
    }

    /// <summary>vring_need_event: whether <paramref name="eventIndex"/> lies in [old, new) in 16-bit ring arithmetic.</summary>
    public static bool NeedEvent(ushort eventIndex, ushort newIndex, ushort oldIndex) =>
        (ushort)(newIndex - eventIndex - 1) < (ushort)(newIndex - oldIndex);

    /// <summary>Ids 0..size-1, lowest on top (Linux hands descriptors out from 0 up, too).</summary>
    public static Stack<ushort> FreeList(int size)
    {
        var free = new Stack<ushort>(size);
        for (int i = size - 1; i >= 0; i--)
        {
            free.Push((ushort)i);
        }

        return free;
    }

    public static ushort Take(Stack<ushort> free, int count)
    {
        if (free.Count < count)
        {
            ThrowHelper.ThrowInvalidOperation("The simulated driver has too few free descriptors for this buffer.");
        }

        return free.Pop();
    }

    private static void Require(bool ok, ulong address)
    {
        if (!ok)
        {
            ThrowHelper.ThrowInvalidOperation($"The simulated driver's ring at 0x{address:X} is not guest RAM.");
        }
    }
}
