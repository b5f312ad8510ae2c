using System;

namespace IoreqSdk.Virtio;

/// <summary>One contiguous piece of a buffer in guest memory, as a descriptor named it (already checked not to wrap at 2^64).</summary>
public readonly struct VirtioBufferSegment : IEquatable<VirtioBufferSegment>
{
    /// <summary>Creates a segment.</summary>
    /// <param name="address">The guest-physical address of the first byte.</param>
    /// <param name="length">The length in bytes.</param>
    public VirtioBufferSegment(ulong address, uint length)
    {
        Address = address;
        Length = length;
    }

    /// <summary>The guest-physical address of the first byte.</summary>
    public ulong Address { get; }

    /// <summary>The length in bytes.</summary>
    public uint Length { get; }

    /// <summary>Compares two segments.</summary>
    /// <param name="left">One segment.</param>
    /// <param name="right">The other.</param>
    /// <returns>Whether address and length are equal.</returns>
    public static bool operator ==(VirtioBufferSegment left, VirtioBufferSegment right) => left.Equals(right);

    /// <summary>Compares two segments.</summary>
    /// <param name="left">One segment.</param>
    /// <param name="right">The other.</param>
    /// <returns>Whether address or length differ.</returns>
    public static bool operator !=(VirtioBufferSegment left, VirtioBufferSegment right) => !left.Equals(right);

    /// <inheritdoc/>
    public bool Equals(VirtioBufferSegment other) => Address == other.Address && Length == other.Length;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is VirtioBufferSegment other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => Address.GetHashCode() ^ (int)Length;

    /// <inheritdoc/>
    public override string ToString() => $"0x{Address:X}+{Length}";
}
