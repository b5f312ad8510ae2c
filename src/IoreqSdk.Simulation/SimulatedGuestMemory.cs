using System;
using IoreqSdk.Memory;

namespace IoreqSdk.Simulation;

/// <summary>
/// The simulated guest's RAM as its own drivers reach it (rings, buffers): guest-physical addresses from
/// <see cref="SimulatedHypervisor.RamBase"/>, every access checked against the RAM's bounds.
/// </summary>
/// <remarks>
/// The guest side of the simulation: use it from the test's threads, never as the device's memory (a device reaches
/// RAM through its server, which maps it as Xen would). Accesses are plain copies; the guest's drivers order them
/// against the device through the vCPU accesses and interrupts between them, as a real guest does with barriers.
/// </remarks>
public sealed class SimulatedGuestMemory : IGuestMemory
{
    private readonly SimulatedHypervisor _xen;

    /// <summary>Creates the view.</summary>
    /// <param name="xen">The simulated guest.</param>
    public SimulatedGuestMemory(SimulatedHypervisor xen) => _xen = xen ?? throw new ArgumentNullException(nameof(xen));

    /// <summary>The first guest-physical address of RAM.</summary>
    public ulong Base => _xen.RamBase;

    /// <summary>The RAM's size in bytes.</summary>
    public ulong Size => (ulong)_xen.Ram.Length;

    /// <inheritdoc/>
    public bool TryRead(ulong address, Span<byte> destination)
    {
        if (!TryOffset(address, destination.Length, out int offset))
        {
            return false;
        }

        _xen.Ram.Slice(offset, destination.Length).CopyTo(destination);
        return true;
    }

    /// <inheritdoc/>
    public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        if (!TryOffset(address, source.Length, out int offset))
        {
            return false;
        }

        source.CopyTo(_xen.Ram.Slice(offset, source.Length));
        return true;
    }

    /// <summary>A span over guest RAM, for a test to fill or inspect a buffer.</summary>
    /// <param name="address">The guest-physical address.</param>
    /// <param name="length">The length.</param>
    /// <returns>The bytes.</returns>
    /// <exception cref="ArgumentOutOfRangeException">Some byte is not RAM.</exception>
    public Span<byte> Span(ulong address, int length) =>
        TryOffset(address, length, out int offset)
            ? _xen.Ram.Slice(offset, length)
            : throw new ArgumentOutOfRangeException(nameof(address), FormattableString.Invariant($"[0x{address:x}, +{length}) is not guest RAM."));

    private bool TryOffset(ulong address, int length, out int offset)
    {
        offset = 0;
        ulong size = Size;
        if (length < 0 || address < Base || address - Base > size || (ulong)length > size - (address - Base))
        {
            return false;
        }

        offset = (int)(address - Base);
        return true;
    }
}
