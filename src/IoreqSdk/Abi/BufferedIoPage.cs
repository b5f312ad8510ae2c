using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace IoreqSdk.Abi;

/// <summary>
/// A view of Xen's <c>buffered_iopage_t</c>: <c>read_pointer</c> u32 @0 (advanced by the device model),
/// <c>write_pointer</c> u32 @4 (advanced by Xen) and 511 <see cref="BufferedIoRequest"/> slots @8; exactly 4096 bytes.
/// </summary>
/// <remarks>
/// <para>Pointers are free-running 32-bit counters and an entry lives in slot <c>pointer % 511</c>. Because 511 is not
/// a power of two the counters must not wrap: in <see cref="BufferedIoreqMode.Atomic"/> mode Xen rebases both
/// with one 64-bit compare-and-swap of the pair whenever <c>read_pointer</c> reaches 511. The consumer therefore
/// reads the pair in one aligned 64-bit load and advances <c>read_pointer</c> only with an atomic add — a plain
/// store of a value computed from an earlier read could undo a rebase that happened in between.</para>
/// <para>The view does not own the memory; whoever mapped the page keeps it alive.</para>
/// </remarks>
public readonly unsafe struct BufferedIoPage
{
    /// <summary><c>sizeof(buffered_iopage_t)</c>.</summary>
    public const int SizeInBytes = IoreqServerResource.PageSize;

    /// <summary><c>IOREQ_BUFFER_SLOT_NUM</c>.</summary>
    public const int SlotCount = 511;

    /// <summary><c>offsetof(buffered_iopage_t, read_pointer)</c>.</summary>
    public const int ReadPointerOffset = 0;

    /// <summary><c>offsetof(buffered_iopage_t, write_pointer)</c>.</summary>
    public const int WritePointerOffset = 4;

    /// <summary><c>offsetof(buffered_iopage_t, buf_ioreq)</c>.</summary>
    public const int SlotsOffset = 8;

    private readonly byte* _page;

    /// <summary>Creates a view of a mapped page.</summary>
    /// <param name="page">The page's address; must be 8-byte aligned and stay mapped while the view is used.</param>
    public BufferedIoPage(nint page)
    {
        if (page == 0 || ((long)page & 7) != 0)
        {
            ThrowHelper.ThrowArgument(nameof(page), "The buffered ioreq page must be mapped at a non-null, 8-byte aligned address.");
        }

        _page = (byte*)page;
    }

    /// <summary>The page's address.</summary>
    public nint Address => (nint)_page;

    /// <summary>Reads both pointers at once, with acquire semantics.</summary>
    /// <param name="readPointer">The consumer's pointer.</param>
    /// <param name="writePointer">The producer's pointer.</param>
    public void ReadPointersAcquire(out uint readPointer, out uint writePointer)
    {
        // One aligned 8-byte load sees the pair as Xen's 64-bit rebase CAS left it, never half-rebased.
        // Acquire: the slots the producer filled before publishing write_pointer are visible afterwards
        // (Xen's smp_wmb() before the pointer store).
        ulong pair = Volatile.Read(ref Unsafe.AsRef<ulong>(_page + ReadPointerOffset));
        readPointer = (uint)pair;
        writePointer = (uint)(pair >> 32);
    }

    /// <summary>
    /// Advances <c>read_pointer</c> by <paramref name="count"/> with an atomic add (full fence), publishing that
    /// the entries before it were consumed.
    /// </summary>
    /// <param name="count">1, or 2 for an 8-byte entry.</param>
    public void AdvanceReadPointer(uint count)
    {
        // An atomic RMW, never a store: Xen may have rebased the pair since we read it, and an add composes
        // with the rebase (both pointers lost the same multiple of 511) where a store would undo it.
        Interlocked.Add(ref Unsafe.AsRef<int>(_page + ReadPointerOffset), (int)count);
    }

    /// <summary>Reads the entry that <paramref name="position"/> names (slot <c>pointer % 511</c>).</summary>
    /// <param name="position">A ring pointer value.</param>
    /// <returns>A copy of the entry.</returns>
    public BufferedIoRequest ReadSlot(uint position) => SlotRef(position);

    /// <summary>Writes an entry (the producer's side; used by the simulated hypervisor).</summary>
    /// <param name="position">A ring pointer value.</param>
    /// <param name="entry">The entry.</param>
    public void WriteSlot(uint position, BufferedIoRequest entry) => SlotRef(position) = entry;

    /// <summary>Publishes a new <c>write_pointer</c> with release semantics (the producer's side).</summary>
    /// <param name="writePointer">The new value.</param>
    public void PublishWritePointer(uint writePointer)
    {
        // Release: the slots written before are visible to a consumer that acquires this pointer.
        Volatile.Write(ref Unsafe.AsRef<uint>(_page + WritePointerOffset), writePointer);
    }

    /// <summary>
    /// Replaces both pointers at once if they still hold the expected pair (the producer's ATOMIC-mode rebase;
    /// used by the simulated hypervisor).
    /// </summary>
    /// <param name="expectedRead">The read pointer last seen.</param>
    /// <param name="expectedWrite">The write pointer last seen.</param>
    /// <param name="newRead">The new read pointer.</param>
    /// <param name="newWrite">The new write pointer.</param>
    /// <returns>Whether the pair was replaced.</returns>
    public bool CompareExchangePointers(uint expectedRead, uint expectedWrite, uint newRead, uint newWrite)
    {
        long expected = (long)(((ulong)expectedWrite << 32) | expectedRead);
        long updated = (long)(((ulong)newWrite << 32) | newRead);
        return Interlocked.CompareExchange(ref Unsafe.AsRef<long>(_page + ReadPointerOffset), updated, expected) == expected;
    }

    private ref BufferedIoRequest SlotRef(uint position) =>
        ref Unsafe.AsRef<BufferedIoRequest>(_page + SlotsOffset + ((position % SlotCount) * BufferedIoRequest.SizeInBytes));
}
