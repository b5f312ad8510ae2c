using System;

namespace IoreqSdk.Pci;

/// <summary>A window of a host bridge: a range of guest-physical addresses it forwards to its bus.</summary>
public readonly struct PciWindow : IEquatable<PciWindow>
{
    /// <summary>Creates a window.</summary>
    /// <param name="baseAddress">The first address.</param>
    /// <param name="size">The size in bytes (at least 1).</param>
    public PciWindow(ulong baseAddress, ulong size)
    {
        if (size == 0 || baseAddress + (size - 1) < baseAddress)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A window has at least one byte and does not wrap.");
        }

        Base = baseAddress;
        Size = size;
    }

    /// <summary>The first address.</summary>
    public ulong Base { get; }

    /// <summary>The size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The last address (inclusive).</summary>
    public ulong End => Base + (Size - 1);

    /// <summary>Whether <c>[address, address + size - 1]</c> lies inside the window.</summary>
    /// <param name="address">The first address.</param>
    /// <param name="size">The length.</param>
    /// <returns>Whether it fits.</returns>
    public bool Contains(ulong address, ulong size) => size != 0 && address >= Base && address - Base <= Size - size && size <= Size;

    /// <inheritdoc/>
    public bool Equals(PciWindow other) => Base == other.Base && Size == other.Size;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is PciWindow other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => Base.GetHashCode() ^ (Size.GetHashCode() * 31);

    /// <inheritdoc/>
    public override string ToString() => FormattableString.Invariant($"[0x{Base:x}, 0x{End:x}]");

    /// <summary>Compares two windows.</summary>
    /// <param name="left">The first.</param>
    /// <param name="right">The second.</param>
    /// <returns>Whether they are equal.</returns>
    public static bool operator ==(PciWindow left, PciWindow right) => left.Equals(right);

    /// <summary>Compares two windows.</summary>
    /// <param name="left">The first.</param>
    /// <param name="right">The second.</param>
    /// <returns>Whether they differ.</returns>
    public static bool operator !=(PciWindow left, PciWindow right) => !left.Equals(right);
}
