using System;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>
/// A bump allocator over part of the simulated guest's RAM, for a guest driver's rings and buffers: each allocation is
/// aligned as asked and zeroed; nothing is freed (a test's guest lives as long as the test).
/// </summary>
public sealed class GuestRamAllocator
{
    private readonly SimulatedGuestMemory _memory;
    private ulong _next;

    /// <summary>Allocates from [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="memory"/>.</summary>
    /// <param name="memory">Guest RAM.</param>
    /// <param name="start">The first address handed out.</param>
    /// <param name="end">The first address past the pool.</param>
    public GuestRamAllocator(SimulatedGuestMemory memory, ulong start, ulong end)
    {
        _memory = memory ?? throw new ArgumentNullException(nameof(memory));
        if (start < memory.Base || end < start || end - memory.Base > memory.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(start), FormattableString.Invariant($"[0x{start:x}, 0x{end:x}) is not inside guest RAM."));
        }

        _next = start;
        End = end;
    }

    /// <summary>The first address past the pool.</summary>
    public ulong End { get; }

    /// <summary>What is left.</summary>
    public ulong Remaining => End - _next;

    /// <summary>Takes <paramref name="size"/> bytes aligned to <paramref name="alignment"/> (a power of two), zeroed.</summary>
    /// <param name="size">The size in bytes (at most 2 GiB).</param>
    /// <param name="alignment">The alignment.</param>
    /// <returns>The guest-physical address.</returns>
    /// <exception cref="InvalidOperationException">The pool is exhausted.</exception>
    public ulong Allocate(ulong size, ulong alignment = 16)
    {
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(alignment), "An alignment is a power of two.");
        }

        if (size > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "An allocation is at most 2 GiB.");
        }

        ulong address = (_next + (alignment - 1)) & ~(alignment - 1);
        if (address < _next || address > End || size > End - address)
        {
            throw new InvalidOperationException(FormattableString.Invariant($"The guest's allocator has 0x{Remaining:x} bytes left; 0x{size:x} aligned to {alignment} do not fit."));
        }

        _next = address + size;
        _memory.Span(address, (int)size).Clear();
        return address;
    }
}
