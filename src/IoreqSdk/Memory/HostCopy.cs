using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace IoreqSdk.Memory;

/// <summary>Copies between guest memory mapped in this process and a device's buffers.</summary>
/// <remarks>
/// Most of a device's copies are a few bytes — a request header, a status byte, a register's value — for which a call
/// to the runtime's general memmove (its length unknown until run time) costs more than the copy: the virtqueue
/// profile had it at a sixth of the device's work per request. Up to 16 bytes are copied inline here with at most two
/// loads and two stores; longer copies go to the runtime's. Both loads come before either store, so source and
/// destination may even overlap, as with memmove. The two loads overlap for some lengths and read those source bytes
/// twice; each destination byte still comes from exactly one of them, so a guest racing the copy sees what it would
/// with any memcpy.
/// </remarks>
internal static class HostCopy
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        int length = source.Length;
        if ((uint)length > 16 || length > destination.Length)
        {
            source.CopyTo(destination);
            return;
        }

        ref byte from = ref MemoryMarshal.GetReference(source);
        ref byte to = ref MemoryMarshal.GetReference(destination);
        if (length >= 8)
        {
            ulong head = Unsafe.ReadUnaligned<ulong>(ref from);
            ulong tail = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, length - 8));
            Unsafe.WriteUnaligned(ref to, head);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, length - 8), tail);
        }
        else if (length >= 4)
        {
            uint head = Unsafe.ReadUnaligned<uint>(ref from);
            uint tail = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref from, length - 4));
            Unsafe.WriteUnaligned(ref to, head);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, length - 4), tail);
        }
        else if (length >= 2)
        {
            ushort head = Unsafe.ReadUnaligned<ushort>(ref from);
            ushort tail = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref from, length - 2));
            Unsafe.WriteUnaligned(ref to, head);
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, length - 2), tail);
        }
        else if (length == 1)
        {
            to = from;
        }
    }
}
