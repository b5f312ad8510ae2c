using System;
using System.Runtime.CompilerServices;
using System.Threading;
using IoreqSdk.Memory;

namespace IoreqSdk.Virtio;

/// <summary>A chain's data as pinned host memory: what a device's worker reads or writes in place, with no copy.</summary>
public sealed partial class VirtioDescriptorChain
{
    /// <summary>The most bytes one chain pins: a larger request (a guest may describe up to 4 GiB) goes through copies.</summary>
    public const int MaxPinnedLength = 4 * 1024 * 1024;

    private HostBuffer[] _pinnedBuffers = new HostBuffer[4];
    private GuestMemoryPin[] _pins = new GuestMemoryPin[4];
    private int _pinnedCount;

    // 1 while pins are held: ReleasePins may come from the worker (its I/O done), from the loop (the push) or from a
    // teardown thread (a dropped request); the exchange makes exactly one of them give the pins back.
    private int _pinsHeld;

    /// <summary>The pinned range, piece by piece in order (as many pieces as segments and 256 KiB windows it crosses),
    /// laid out as <c>struct iovec</c>; empty when nothing is pinned.</summary>
    /// <remarks>Readable from any thread while the pins are held, e.g. by a worker passing it to
    /// <see cref="Storage.RawImageFile.ReadAt(long, ReadOnlySpan{HostBuffer})"/>.</remarks>
    public ReadOnlySpan<HostBuffer> PinnedBuffers => new(_pinnedBuffers, 0, _pinnedCount);

    /// <summary>Whether a range of the buffer is pinned now.</summary>
    public bool HasPins => Volatile.Read(ref _pinsHeld) != 0;

    /// <summary>
    /// Pins <paramref name="length"/> bytes of the device-readable part, from <paramref name="offset"/>, so that another
    /// thread may read them in place (<see cref="PinnedBuffers"/>) until <see cref="ReleasePins"/>. On the loop.
    /// </summary>
    /// <param name="offset">The byte offset into the readable part.</param>
    /// <param name="length">The byte count, 1 to <see cref="MaxPinnedLength"/>.</param>
    /// <returns>
    /// <see langword="false"/> if the range runs past the readable part or is too long, the chain holds no buffer (or one
    /// from before a reset or disable of its queue) or holds pins already, the memory cannot pin
    /// (<see cref="IPinnableGuestMemory"/>), or some byte is not guest RAM — nothing is pinned then: use
    /// <see cref="TryRead"/>.
    /// </returns>
    public bool TryPinReadable(ulong offset, ulong length) => TryPin(new(_readable, 0, _readableCount), ReadableLength, offset, length);

    /// <summary>
    /// Pins <paramref name="length"/> bytes of the device-writable part, from <paramref name="offset"/>, so that another
    /// thread may fill them in place (<see cref="PinnedBuffers"/>) until <see cref="ReleasePins"/>. On the loop.
    /// </summary>
    /// <param name="offset">The byte offset into the writable part.</param>
    /// <param name="length">The byte count, 1 to <see cref="MaxPinnedLength"/>.</param>
    /// <returns><see langword="false"/> as <see cref="TryPinReadable"/> does; nothing is pinned then: use <see cref="TryWrite"/>.</returns>
    public bool TryPinWritable(ulong offset, ulong length) => TryPin(new(_writable, 0, _writableCount), WritableLength, offset, length);

    /// <summary>
    /// Gives the pins back, from any thread, once nothing touches the pinned memory any more (a worker, as soon as its
    /// I/O is done). Idempotent; a push releases pins still held.
    /// </summary>
    public void ReleasePins()
    {
        // A plain read first: every pop and push ask, and nearly always nothing is pinned. A 0 read here is never stale
        // for a caller that may hold pins: the loop set the flag itself, and a worker got the chain after it was set.
        // Then a full fence (exchange): the caller's accesses to the pinned memory come first; of concurrent callers,
        // one wins.
        if (Volatile.Read(ref _pinsHeld) == 0 || Interlocked.Exchange(ref _pinsHeld, 0) == 0)
        {
            return;
        }

        GiveBackPieces();
    }

    private bool TryPin(ReadOnlySpan<VirtioBufferSegment> segments, ulong total, ulong offset, ulong length)
    {
        if (_memory is not IPinnableGuestMemory memory
            || !IsCurrent
            || HasPins
            || length == 0
            || length > MaxPinnedLength
            || !Fits(offset, length, total))
        {
            return false;
        }

        _pinnedCount = 0;
        ulong remaining = length;
        for (int i = 0; i < segments.Length && remaining != 0; i++)
        {
            VirtioBufferSegment segment = segments[i];
            if (offset >= segment.Length)
            {
                offset -= segment.Length;
                continue;
            }

            ulong address = segment.Address + offset;
            int left = (int)Math.Min(remaining, segment.Length - offset);
            offset = 0;
            while (left != 0)
            {
                if (!memory.TryPin(address, left, out HostBuffer buffer, out GuestMemoryPin pin))
                {
                    // A pin failed part-way: the pieces pinned so far go back (on the loop, before anyone saw them).
                    GiveBackPieces();
                    return false;
                }

                AddPin(buffer, pin);
                address += (ulong)buffer.Length;
                left -= buffer.Length;
                remaining -= (ulong)buffer.Length;
            }
        }

        // Release: a worker that is handed the chain after this sees the pieces (the hand-over orders it anyway).
        Volatile.Write(ref _pinsHeld, 1);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AddPin(HostBuffer buffer, GuestMemoryPin pin)
    {
        if (_pinnedCount == _pins.Length)
        {
            GrowPins();
        }

        _pinnedBuffers[_pinnedCount] = buffer;
        _pins[_pinnedCount++] = pin;
    }

    /// <summary>Releases every piece pinned and forgets them: by the one caller that won the pins, or after a part-way failure.</summary>
    private void GiveBackPieces()
    {
        for (int i = 0; i < _pinnedCount; i++)
        {
            _pins[i].Release();
            _pins[i] = default;
        }

        _pinnedCount = 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void GrowPins()
    {
        Array.Resize(ref _pins, _pins.Length * 2);
        Array.Resize(ref _pinnedBuffers, _pinnedBuffers.Length * 2);
    }
}
