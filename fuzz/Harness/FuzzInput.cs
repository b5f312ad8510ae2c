using System;
using System.Buffers.Binary;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// The fuzzer's bytes read as a guest's choices: every read past the end yields zeros, so every input — empty,
/// truncated, garbage — is a valid program and the mutator never wastes a run on a parse error.
/// </summary>
public ref struct FuzzInput
{
    private readonly ReadOnlySpan<byte> _bytes;
    private int _position;

    /// <summary>Reads <paramref name="bytes"/> from the start.</summary>
    /// <param name="bytes">The input.</param>
    public FuzzInput(ReadOnlySpan<byte> bytes)
    {
        _bytes = bytes;
        _position = 0;
    }

    /// <summary>Whether input is left.</summary>
    public readonly bool HasMore => _position < _bytes.Length;

    /// <summary>How many bytes are left.</summary>
    public readonly int Remaining => _bytes.Length - _position;

    /// <summary>The next byte (0 past the end).</summary>
    /// <returns>The byte.</returns>
    public byte U8() => _position < _bytes.Length ? _bytes[_position++] : (byte)0;

    /// <summary>The next little-endian 16-bit value.</summary>
    /// <returns>The value.</returns>
    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));

    /// <summary>The next little-endian 32-bit value.</summary>
    /// <returns>The value.</returns>
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    /// <summary>The next little-endian 64-bit value.</summary>
    /// <returns>The value.</returns>
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    /// <summary>A flag from the next byte's low bit.</summary>
    /// <returns>The flag.</returns>
    public bool Bool() => (U8() & 1) != 0;

    /// <summary>A choice among <paramref name="count"/> options from the next byte.</summary>
    /// <param name="count">1 to 256.</param>
    /// <returns>0 to <paramref name="count"/> - 1.</returns>
    public int Choose(int count) => U8() % count;

    /// <summary>An access width: 1, 2, 4 or 8 (or, with <paramref name="legalOnly"/> off, any 32-bit value one time in 8).</summary>
    /// <param name="legalOnly">Whether only the four legal widths may come out.</param>
    /// <returns>The width.</returns>
    public uint Width(bool legalOnly = true)
    {
        byte b = U8();
        if (!legalOnly && (b & 0xE0) == 0xE0)
        {
            return U32();
        }

        return 1u << (b & 3);
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        // Short reads are padded with zeros: a stack copy, so the caller always gets count bytes.
        if (_bytes.Length - _position >= count)
        {
            ReadOnlySpan<byte> slice = _bytes.Slice(_position, count);
            _position += count;
            return slice;
        }

        var padded = new byte[count];
        _bytes.Slice(_position).CopyTo(padded);
        _position = _bytes.Length;
        return padded;
    }
}
