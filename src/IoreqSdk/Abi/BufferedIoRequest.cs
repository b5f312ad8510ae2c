using System.Runtime.InteropServices;

namespace IoreqSdk.Abi;

/// <summary>
/// One entry of the buffered ring, byte for byte Xen's <c>buf_ioreq_t</c>: 8 bytes, 4-byte aligned. Seen as two
/// little-endian 32-bit words, the first packs <c>type</c> (bits 0–7), <c>pad</c> (bit 8), <c>dir</c> (bit 9),
/// <c>size</c> (bits 10–11, a code: 0→1, 1→2, 2→4, 3→8 bytes) and a 20-bit <c>addr</c> (bits 12–31); the second is
/// <c>data</c>.
/// </summary>
/// <remarks>
/// An 8-byte value takes two consecutive entries: the first carries the low 32 bits, the second the same header
/// with the high 32 bits (Xen's <c>ioreq_send_buffered</c>).
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = SizeInBytes)]
public readonly struct BufferedIoRequest
{
    /// <summary><c>sizeof(buf_ioreq_t)</c>.</summary>
    public const int SizeInBytes = 8;

    /// <summary><c>_Alignof(buf_ioreq_t)</c>.</summary>
    public const int Alignment = 4;

    /// <summary>The offset of the packed header word (<c>type</c> is its byte 0).</summary>
    public const int HeaderOffset = 0;

    /// <summary><c>offsetof(buf_ioreq_t, data)</c>.</summary>
    public const int DataOffset = 4;

    /// <summary>The bits of <c>type</c> in the header word.</summary>
    public const uint TypeMask = 0xFF;

    /// <summary>The bit number of <c>pad</c> in the header word.</summary>
    public const int PaddingBit = 8;

    /// <summary>The bit number of <c>dir</c> in the header word.</summary>
    public const int DirectionBit = 9;

    /// <summary>The position of the 2-bit <c>size</c> code in the header word.</summary>
    public const int SizeCodeShift = 10;

    /// <summary>The width mask of the <c>size</c> code.</summary>
    public const uint SizeCodeMask = 0x3;

    /// <summary>The position of the 20-bit <c>addr</c> in the header word.</summary>
    public const int AddressShift = 12;

    /// <summary>The largest address an entry can hold (20 bits).</summary>
    public const uint MaxAddress = 0xFFFFF;

    [FieldOffset(HeaderOffset)]
    private readonly uint _header;

    [FieldOffset(DataOffset)]
    private readonly uint _data;

    /// <summary>Creates an entry from raw words, as they lie in the ring.</summary>
    /// <param name="header">The packed header word.</param>
    /// <param name="data">The data word.</param>
    public BufferedIoRequest(uint header, uint data)
    {
        _header = header;
        _data = data;
    }

    /// <summary>The packed header word.</summary>
    public uint Header => _header;

    /// <summary><c>data</c>: the value, or one 32-bit half of an 8-byte value.</summary>
    public uint Data => _data;

    /// <summary><c>type</c>.</summary>
    public IoreqType Type => (IoreqType)(_header & TypeMask);

    /// <summary><c>pad</c>.</summary>
    public bool Padding => ((_header >> PaddingBit) & 1) != 0;

    /// <summary><c>dir</c> (always a write in practice).</summary>
    public IoreqDirection Direction => (IoreqDirection)((_header >> DirectionBit) & 1);

    /// <summary>The 2-bit <c>size</c> code.</summary>
    public int SizeCode => (int)((_header >> SizeCodeShift) & SizeCodeMask);

    /// <summary>The access size in bytes: 1, 2, 4 or 8.</summary>
    public int Size => 1 << SizeCode;

    /// <summary><c>addr</c>: a 20-bit guest-physical address.</summary>
    public uint Address => _header >> AddressShift;

    /// <summary>Packs an entry exactly as Xen does.</summary>
    /// <param name="type">The request type.</param>
    /// <param name="direction">The direction.</param>
    /// <param name="size">The access size in bytes: 1, 2, 4 or 8.</param>
    /// <param name="address">The address; must fit in 20 bits.</param>
    /// <param name="data">The data word.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="System.ArgumentOutOfRangeException"><paramref name="size"/> is not 1, 2, 4 or 8, or
    /// <paramref name="address"/> exceeds <see cref="MaxAddress"/>.</exception>
    public static BufferedIoRequest Create(IoreqType type, IoreqDirection direction, int size, uint address, uint data)
    {
        if (!TryGetSizeCode(size, out int code))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A buffered request is 1, 2, 4 or 8 bytes wide.");
        }

        if (address > MaxAddress)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(address), "A buffered request's address has 20 bits.");
        }

        uint header = (byte)type
            | ((uint)direction & 1) << DirectionBit
            | (uint)code << SizeCodeShift
            | address << AddressShift;
        return new BufferedIoRequest(header, data);
    }

    /// <summary>
    /// Packs an 8-byte value as the two entries Xen writes for it: the same header in both, the low 32 bits in the
    /// first and the high 32 bits in the second.
    /// </summary>
    /// <param name="type">The request type.</param>
    /// <param name="address">The address; must fit in 20 bits.</param>
    /// <param name="value">The 64-bit value.</param>
    /// <param name="low">The first entry.</param>
    /// <param name="high">The second entry.</param>
    public static void CreatePair(IoreqType type, uint address, ulong value, out BufferedIoRequest low, out BufferedIoRequest high)
    {
        low = Create(type, IoreqDirection.Write, 8, address, (uint)value);
        high = new BufferedIoRequest(low.Header, (uint)(value >> 32));
    }

    /// <summary>The 64-bit value of an 8-byte entry pair.</summary>
    /// <param name="low">The first entry (low 32 bits).</param>
    /// <param name="high">The second entry (high 32 bits).</param>
    /// <returns>The value.</returns>
    public static ulong CombinePair(BufferedIoRequest low, BufferedIoRequest high) => low.Data | ((ulong)high.Data << 32);

    /// <summary>The <c>size</c> code of an access width.</summary>
    /// <param name="size">The width in bytes.</param>
    /// <param name="code">The code (0–3) when the width is 1, 2, 4 or 8.</param>
    /// <returns>Whether the width can be buffered.</returns>
    public static bool TryGetSizeCode(int size, out int code)
    {
        switch (size)
        {
            case 1: code = 0; return true;
            case 2: code = 1; return true;
            case 4: code = 2; return true;
            case 8: code = 3; return true;
            default: code = 0; return false;
        }
    }
}
