using System;
using System.Runtime.CompilerServices;
using IoreqSdk.Memory;

namespace IoreqSdk.Virtio;

/// <summary>
/// One buffer the driver made available: its descriptor chain, read once from guest memory into this object's own
/// arrays and validated, as an ordered list of device-readable segments followed by device-writable ones.
/// </summary>
/// <remarks>
/// <para>
/// A chain object is reusable: a device keeps a few (one per request it may have in flight) and passes one to
/// <see cref="VirtioQueue.TryPop(VirtioDescriptorChain)"/>, which fills it, then hands it back with
/// <see cref="VirtioQueue.Push(VirtioDescriptorChain, uint)"/>. Its arrays grow to the longest chain seen and are then
/// reused, so steady-state popping allocates nothing.
/// </para>
/// <para>
/// The guest may rewrite its descriptor table at any time; nothing here is re-read from it. The data itself stays in
/// guest memory: <see cref="TryRead"/> and <see cref="TryWrite"/> copy across segments through
/// <see cref="IGuestMemory"/>, on the loop; <see cref="TryPinReadable"/> and <see cref="TryPinWritable"/> give a range
/// of it as pinned host memory instead, for a device's worker thread to use in place (zero copy).
/// </para>
/// </remarks>
public sealed partial class VirtioDescriptorChain
{
    private VirtioBufferSegment[] _readable = new VirtioBufferSegment[4];
    private VirtioBufferSegment[] _writable = new VirtioBufferSegment[4];
    private int _readableCount;
    private int _writableCount;
    private IGuestMemory? _memory;

    // The queue the chain was last popped from, kept after the push: a chain is popped from the same queue again and
    // again, and storing the reference only when it changes spares a GC write barrier per pop. _outstanding says
    // whether the chain holds a buffer now.
    private VirtioQueue? _lastOwner;
    private bool _outstanding;

    /// <summary>Creates an empty chain, ready for <see cref="VirtioQueue.TryPop(VirtioDescriptorChain)"/>.</summary>
    public VirtioDescriptorChain()
    {
    }

    /// <summary>The buffer's id as the used ring will report it: the head descriptor's index (split) or the buffer id (packed).</summary>
    public ushort Id { get; private set; }

    /// <summary>The index of the queue this chain was popped from, or -1 while the chain holds no buffer.</summary>
    public int QueueIndex => Owner?.Index ?? -1;

    /// <summary>Whether the chain holds a buffer that has not been pushed back yet.</summary>
    public bool IsOutstanding => Owner is not null;

    /// <summary>
    /// Whether the buffer still belongs to the driver's queue as it is now: outstanding, and the queue not reset or
    /// disabled since the pop. A device whose request finishes later (off the loop) checks this before touching the
    /// buffer's memory: the driver may have reused it after a reset; <see cref="VirtioQueue.Push"/> drops a stale chain.
    /// </summary>
    // Outstanding only after Complete set the queue: the owner is there. TryRead, TryWrite and the pins ask this too, so
    // a buffer from before a reset or a disable is never touched.
    public bool IsCurrent => _outstanding && Epoch == _lastOwner!.Epoch;

    /// <summary>The queue the buffer came from, while it is outstanding.</summary>
    internal VirtioQueue? Owner => _outstanding ? _lastOwner : null;

    /// <summary>The device-readable segments, in chain order.</summary>
    public ReadOnlySpan<VirtioBufferSegment> Readable => new(_readable, 0, _readableCount);

    /// <summary>The device-writable segments, in chain order.</summary>
    public ReadOnlySpan<VirtioBufferSegment> Writable => new(_writable, 0, _writableCount);

    /// <summary>The total length of the readable segments.</summary>
    public ulong ReadableLength { get; private set; }

    /// <summary>The total length of the writable segments.</summary>
    public ulong WritableLength { get; private set; }

    /// <summary>How many ring slots the buffer took (1 for an indirect buffer); the packed ring advances by this.</summary>
    internal int RingSlots { get; set; }

    /// <summary>The reset epoch of the queue at pop time: a chain from before a reset is never pushed.</summary>
    internal uint Epoch { get; private set; }

    /// <summary>
    /// Copies device-readable bytes out of guest memory, starting <paramref name="offset"/> bytes into the readable
    /// part and continuing across segments.
    /// </summary>
    /// <param name="offset">The byte offset into the readable part.</param>
    /// <param name="destination">Where to copy to; its length is the byte count.</param>
    /// <returns>
    /// <see langword="false"/> if the range runs past the readable part, the chain holds no buffer, its queue was reset or
    /// disabled since the pop (<see cref="IsCurrent"/>), or some byte is not guest RAM (then <paramref name="destination"/>
    /// is partly filled; the device decides what the request fails with).
    /// </returns>
    public bool TryRead(ulong offset, Span<byte> destination)
    {
        IGuestMemory? memory = _memory;
        if (memory is null || !IsCurrent)
        {
            return false;
        }

        var segments = new ReadOnlySpan<VirtioBufferSegment>(_readable, 0, _readableCount);
        return TryLocateInOneSegment(segments, ReadableLength, offset, destination.Length, out ulong address)
            ? memory.TryRead(address, destination)
            : CopyAcross(memory, segments, ReadableLength, offset, destination, default, toGuest: false);
    }

    /// <summary>
    /// Copies bytes into the device-writable part in guest memory, starting <paramref name="offset"/> bytes into it and
    /// continuing across segments.
    /// </summary>
    /// <param name="offset">The byte offset into the writable part.</param>
    /// <param name="source">What to copy.</param>
    /// <returns>
    /// <see langword="false"/> if the range runs past the writable part, the chain holds no buffer, its queue was reset or
    /// disabled since the pop (<see cref="IsCurrent"/>), or some byte is not guest RAM (a prefix may have been written).
    /// </returns>
    public bool TryWrite(ulong offset, ReadOnlySpan<byte> source)
    {
        IGuestMemory? memory = _memory;
        if (memory is null || !IsCurrent)
        {
            return false;
        }

        var segments = new ReadOnlySpan<VirtioBufferSegment>(_writable, 0, _writableCount);
        return TryLocateInOneSegment(segments, WritableLength, offset, source.Length, out ulong address)
            ? memory.TryWrite(address, source)
            : CopyAcross(memory, segments, WritableLength, offset, default, source, toGuest: true);
    }

    internal void Begin(IGuestMemory memory, uint epoch)
    {
        // A chain is popped again and again from the same queue: skip the store (and its GC write barrier) then.
        if (!ReferenceEquals(_memory, memory))
        {
            _memory = memory;
        }

        Epoch = epoch;
        ReleasePins();
        _outstanding = false;
    }

    /// <summary>
    /// Empties the segment lists, before a walk that appends to them (<see cref="Add"/>) and after a failed pop. Not in
    /// <see cref="Begin"/>: the in-place split walk sets them whole at its end (<see cref="SetParts"/>), and these five
    /// stores were a tenth of the pop's own work.
    /// </summary>
    internal void ClearParts()
    {
        _readableCount = 0;
        _writableCount = 0;
        ReadableLength = 0;
        WritableLength = 0;
        RingSlots = 0;
    }

    /// <summary>The readable segments' array, for the in-place walk to fill (then <see cref="SetParts"/>).</summary>
    internal VirtioBufferSegment[] ReadableSegments => _readable;

    /// <summary>The writable segments' array, for the in-place walk to fill (then <see cref="SetParts"/>).</summary>
    internal VirtioBufferSegment[] WritableSegments => _writable;

    /// <summary>Sets how many segments of each array the walk filled, and their total lengths.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetParts(int readableCount, ulong readableLength, int writableCount, ulong writableLength)
    {
        _readableCount = readableCount;
        _writableCount = writableCount;
        ReadableLength = readableLength;
        WritableLength = writableLength;
    }

    /// <summary>
    /// What the in-place walk (and <see cref="TryAdd"/>) returns when a segment does not fit: not an error of the
    /// guest's (no value of the public enumeration), a request to walk the chain again with <see cref="Add"/>, which
    /// grows the arrays.
    /// </summary>
    internal const VirtioQueueError ArraysFull = (VirtioQueueError)(-1);

    /// <summary>Appends a segment, growing the arrays if needed; refuses a readable one after a writable one.</summary>
    internal VirtioQueueError Add(ulong address, uint length, bool writable)
    {
        VirtioQueueError error = TryAdd(address, length, writable);
        if (error == ArraysFull)
        {
            GrowFullArrays();
            error = TryAdd(address, length, writable);
        }

        return error;
    }

    /// <summary>
    /// Appends a segment if its array has room, else returns <see cref="ArraysFull"/>; refuses a readable one after a
    /// writable one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private VirtioQueueError TryAdd(ulong address, uint length, bool writable)
    {
        if (length != 0 && address > ulong.MaxValue - (length - 1))
        {
            return VirtioQueueError.BufferAddressWraps;
        }

        if (writable)
        {
            // One comparison both finds room and proves the store in bounds (the JIT drops its own check for it).
            VirtioBufferSegment[] segments = _writable;
            int count = _writableCount;
            if ((uint)count >= (uint)segments.Length)
            {
                return ArraysFull;
            }

            segments[count] = new VirtioBufferSegment(address, length);
            _writableCount = count + 1;
            WritableLength += length;
        }
        else
        {
            if (_writableCount != 0)
            {
                return VirtioQueueError.WritableBeforeReadable;
            }

            VirtioBufferSegment[] segments = _readable;
            int count = _readableCount;
            if ((uint)count >= (uint)segments.Length)
            {
                return ArraysFull;
            }

            segments[count] = new VirtioBufferSegment(address, length);
            _readableCount = count + 1;
            ReadableLength += length;
        }

        return VirtioQueueError.None;
    }

    /// <summary>
    /// Doubles each segment array that is full. The arrays grow to the longest chain seen (at most twice the queue
    /// size), a few times in a chain object's life; later pops reuse them. Out of line: it almost never runs.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void GrowFullArrays()
    {
        if (_readableCount == _readable.Length)
        {
            Array.Resize(ref _readable, _readable.Length * 2);
        }

        if (_writableCount == _writable.Length)
        {
            Array.Resize(ref _writable, _writable.Length * 2);
        }
    }

    internal void Complete(VirtioQueue owner, ushort id)
    {
        if (!ReferenceEquals(_lastOwner, owner))
        {
            _lastOwner = owner;
        }

        _outstanding = true;
        Id = id;
    }

    /// <summary>Forgets the buffer (after a push, or when a pop fails part-way).</summary>
    internal void Release()
    {
        // Pushed (or the pop failed): nothing of the buffer may be touched any more, pinned or not.
        ReleasePins();

        // The memory stays referenced (Begin re-checks it): a released chain reaches no guest memory because TryRead and
        // TryWrite refuse a chain that is not outstanding.
        _outstanding = false;
    }

    private static bool Fits(ulong offset, ulong count, ulong total) => offset <= total && count <= total - offset;

    /// <summary>
    /// Whether [offset, offset + length) of a part lies inside its first segment (a request header) or its last (a
    /// status byte at the end of the writable part), the usual cases: then one copy at <paramref name="address"/>, no
    /// walk. Inside one segment is inside the part: no other bounds check.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryLocateInOneSegment(ReadOnlySpan<VirtioBufferSegment> segments, ulong total, ulong offset, int length, out ulong address)
    {
        address = 0;
        if (segments.IsEmpty)
        {
            return false;
        }

        VirtioBufferSegment first = segments[0];
        if (offset < first.Length && (ulong)length <= first.Length - offset)
        {
            address = first.Address + offset;
            return true;
        }

        VirtioBufferSegment last = segments[segments.Length - 1];
        ulong inLast = offset - (total - last.Length);
        if (offset >= total - last.Length && inLast < last.Length && (ulong)length <= last.Length - inLast)
        {
            address = last.Address + inLast;
            return true;
        }

        return false;
    }

    /// <summary>A copy of a range across segments (or inside a middle one), piece by piece.</summary>
    private static bool CopyAcross(
        IGuestMemory memory, ReadOnlySpan<VirtioBufferSegment> segments, ulong total, ulong offset, Span<byte> fromGuest, ReadOnlySpan<byte> toGuestBytes, bool toGuest)
    {
        int length = toGuest ? toGuestBytes.Length : fromGuest.Length;
        if (!Fits(offset, (ulong)length, total))
        {
            return false;
        }

        int done = 0;
        for (int i = 0; i < segments.Length && done < length; i++)
        {
            VirtioBufferSegment segment = segments[i];
            if (offset >= segment.Length)
            {
                offset -= segment.Length;
                continue;
            }

            int take = (int)Math.Min((ulong)(length - done), segment.Length - offset);
            bool copied = toGuest
                ? memory.TryWrite(segment.Address + offset, toGuestBytes.Slice(done, take))
                : memory.TryRead(segment.Address + offset, fromGuest.Slice(done, take));
            if (!copied)
            {
                return false;
            }

            done += take;
            offset = 0;
        }

        return true;
    }
}
