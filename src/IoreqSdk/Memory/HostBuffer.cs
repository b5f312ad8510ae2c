using System;
using System.Runtime.InteropServices;

namespace IoreqSdk.Memory;

/// <summary>
/// A piece of this process's memory — a pinned piece of guest RAM — laid out as POSIX <c>struct iovec</c> (base
/// pointer, then byte count), so that a span of them goes to <c>preadv</c> and <c>pwritev</c> as it is.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct HostBuffer : IEquatable<HostBuffer>
{
    private readonly nint _address;
    private readonly nuint _length;

    /// <summary>Describes a piece of memory.</summary>
    /// <param name="address">The address of its first byte.</param>
    /// <param name="length">Its length in bytes.</param>
    public HostBuffer(nint address, int length)
    {
        if (length < 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(length), "A length is not negative.");
        }

        _address = address;
        _length = (nuint)length;
    }

    /// <summary>The address of the first byte.</summary>
    public nint Address => _address;

    /// <summary>The length in bytes.</summary>
    public int Length => (int)_length;

    /// <summary>Compares two buffers.</summary>
    /// <param name="left">One buffer.</param>
    /// <param name="right">The other.</param>
    /// <returns>Whether address and length are equal.</returns>
    public static bool operator ==(HostBuffer left, HostBuffer right) => left.Equals(right);

    /// <summary>Compares two buffers.</summary>
    /// <param name="left">One buffer.</param>
    /// <param name="right">The other.</param>
    /// <returns>Whether address or length differ.</returns>
    public static bool operator !=(HostBuffer left, HostBuffer right) => !left.Equals(right);

    /// <summary>The memory as a span, while it stays mapped (for pinned guest memory: until the pin is released).</summary>
    /// <returns>A span over <see cref="Length"/> bytes at <see cref="Address"/>.</returns>
    public unsafe Span<byte> AsSpan() => new((void*)_address, (int)_length);

    /// <inheritdoc/>
    public bool Equals(HostBuffer other) => _address == other._address && _length == other._length;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is HostBuffer other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _address.GetHashCode() ^ (int)_length;

    /// <inheritdoc/>
    public override string ToString() => $"0x{(ulong)_address:X}+{(ulong)_length}";
}
