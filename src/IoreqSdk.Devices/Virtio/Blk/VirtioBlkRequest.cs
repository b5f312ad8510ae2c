using System;
using System.Buffers.Binary;
using System.IO;
using System.Threading;
using IoreqSdk.Storage;
using IoreqSdk.Virtio;

namespace IoreqSdk.Devices.Virtio.Blk;

/// <summary>What a request does with the image, off the loop.</summary>
internal enum BlkOperation
{
    None,
    Read,
    Write,
    Flush,
    Discard,
    WriteZeroes,
}

/// <summary>
/// One request slot of a queue, preallocated with its chain (its bounce buffer made at first use, then kept): the loop
/// fills it from a popped chain and pins its data, the worker moves it between the image and the pinned guest buffers
/// in one step; or, when the data cannot be pinned, the worker moves one step between the bounce buffer and the image
/// and the loop copies it to or from guest memory and queues the next step or finishes. Nothing is allocated per
/// request.
/// </summary>
internal sealed class VirtioBlkRequest : OffLoopWork
{
    // Zeros for WRITE_ZEROES where the file system cannot zero a range: only ever read, shared by every worker.
    private static readonly byte[] s_zeros = new byte[64 * 1024];

    private readonly VirtioBlkDevice _device;
    private readonly RawImageFile _image;
    private readonly int _bounceSize;
    private byte[]? _bounce;

    public VirtioBlkRequest(VirtioBlkDevice device, RawImageFile image, BlkQueue queue, int bounceSize)
    {
        _device = device;
        _image = image;
        Queue = queue;
        _bounceSize = bounceSize;
    }

    public BlkQueue Queue { get; }

    public VirtioDescriptorChain Chain { get; } = new();

    /// <summary>
    /// The bounce buffer: one step's data, or a discard / write-zeroes request's ranges. Made at its first use and kept:
    /// with zero copy most requests never need one, and eight 64 KiB buffers made up front were most of what each
    /// further device cost a process serving many (benchmarks/README.md, Footprint). The first use is on the loop (a
    /// write's data, the ranges) or on the worker (a read's data); the request belongs to one side at a time and the
    /// hand-over between them is ordered, so the other side sees the buffer made.
    /// </summary>
    public byte[] Bounce => _bounce ??= new byte[_bounceSize];

    /// <summary>The device's reset epoch when the request began: a completion of an older epoch is dropped.</summary>
    public uint Epoch { get; set; }

    public BlkOperation Operation { get; set; }

    /// <summary>The image offset of the request's first byte.</summary>
    public long Offset { get; set; }

    /// <summary>The data bytes of the request (IN, OUT), or the range count (DISCARD, WRITE_ZEROES).</summary>
    public long Length { get; set; }

    /// <summary>The data bytes done so far.</summary>
    public long Done { get; set; }

    /// <summary>The bytes of the current step.</summary>
    public int Step { get; set; }

    /// <summary>Where in the writable part the status byte is (its last byte).</summary>
    public ulong StatusOffset { get; set; }

    /// <summary>Whether a write is made durable before it completes (FLUSH not negotiated: the device writes through).</summary>
    public bool WriteThrough { get; set; }

    // 1 while the request holds its chain's pins: given back once, by the worker after its I/O or by a teardown that
    // dropped the request, whichever comes first.
    private int _holdsPins;

    // The queue's generation when the pins were taken: a step that finds it moved (a reset, the queue disabled, DMA
    // stopped) does not touch the buffer, which is the driver's again.
    private int _generation;

    /// <summary>Whether the data range is pinned in the chain: the worker moves it in place, in one step, and releases it.</summary>
    public bool Pinned { get; set; }

    /// <summary>The pins taken on the loop now belong to this run of the request.</summary>
    public void HoldPins()
    {
        _generation = Volatile.Read(ref Queue.Generation);

        // Release: the generation is set before a releaser can see the pins held (the hand-over orders it too).
        Volatile.Write(ref _holdsPins, 1);
    }

    /// <summary>Set off the loop when the image refused the step.</summary>
    public bool Failed { get; private set; }

    protected override void Execute(CancellationToken cancellationToken)
    {
        Failed = false;
        if (Pinned)
        {
            ExecuteInPlace();
            return;
        }

        try
        {
            switch (Operation)
            {
                case BlkOperation.Read:
                    // A short read is the image shrinking under the device (capacity is fixed at open): an I/O error.
                    Failed = _image.ReadAt(Offset + Done, Bounce.AsSpan(0, Step)) != Step;
                    break;
                case BlkOperation.Write:
                    _image.WriteAt(Offset + Done, Bounce.AsSpan(0, Step));
                    if (WriteThrough && Done + Step == Length)
                    {
                        _image.FlushToDisk();
                    }

                    break;
                case BlkOperation.Flush:
                    _image.FlushToDisk();
                    break;
                case BlkOperation.Discard:
                case BlkOperation.WriteZeroes:
                    ApplyRanges(cancellationToken);
                    break;
                default:
                    Failed = true;
                    break;
            }
        }
        catch (IOException)
        {
            Failed = true;
        }
    }

    /// <summary>A read or write straight between the image and the pinned guest buffers (the worker).</summary>
    private void ExecuteInPlace()
    {
        _device.EnterZeroCopy(Queue.Queue.Index);
        try
        {
            if (Volatile.Read(ref Queue.Generation) != _generation)
            {
                // The driver took the buffer back before the step began: not a byte of it is touched.
                Failed = true;
            }
            else if (Operation == BlkOperation.Read)
            {
                // A short read is the image shrinking under the device (capacity is fixed at open): an I/O error.
                Failed = _image.ReadAt(Offset, Chain.PinnedBuffers) != Length;
            }
            else
            {
                _image.WriteAt(Offset, Chain.PinnedBuffers);
                if (WriteThrough)
                {
                    _image.FlushToDisk();
                }
            }
        }
        catch (IOException)
        {
            Failed = true;
        }
        finally
        {
            // The I/O is over: the pins go back (an INVALIDATE that came meanwhile unmaps the window now), then the
            // count a waiting reset watches. Visibility of the data to the guest: the completion's hand-over to the
            // loop, then the used ring's release barrier, order these writes before the buffer is returned.
            ReleasePins();
            _device.ExitZeroCopy(Queue.Queue.Index);
        }
    }

    protected override void Complete() => _device.OnStepDone(this);

    // The server stopped before the completion ran: the pins go back now, or the pinned windows would stay mapped
    // (on Xen, a foreign mapping keeps the guest's pages — and a destroyed domain — alive) until a device reset.
    protected override void OnDropped() => ReleasePins();

    /// <summary>Gives the chain's pins back once, from whichever thread gets here first.</summary>
    public void ReleasePins()
    {
        if (Interlocked.Exchange(ref _holdsPins, 0) != 0)
        {
            Chain.ReleasePins();
        }
    }

    protected override void Fail(Exception error)
    {
        Failed = true;
        _device.OnStepDone(this);
    }

    /// <summary>The ranges were validated on the loop (in bounds, flags known); applied one by one here.</summary>
    private void ApplyRanges(CancellationToken cancellationToken)
    {
        for (int i = 0; i < Length && !cancellationToken.IsCancellationRequested; i++)
        {
            ReadOnlySpan<byte> range = Bounce.AsSpan(i * VirtioBlk.RangeSize, VirtioBlk.RangeSize);
            long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(range) << VirtioBlk.SectorShift;
            long length = (long)BinaryPrimitives.ReadUInt32LittleEndian(range.Slice(8)) << VirtioBlk.SectorShift;
            bool unmap = (BinaryPrimitives.ReadUInt32LittleEndian(range.Slice(12)) & VirtioBlk.FlagUnmap) != 0;
            if (length == 0)
            {
                continue;
            }

            if (Operation == BlkOperation.Discard)
            {
                // Discarded sectors may read back anything (§5.2.6); a file system without hole punching keeps the data.
                _image.TryPunchHole(offset, length);
            }
            else if (!(unmap && _image.TryPunchHole(offset, length)) && !_image.TryZeroRange(offset, length))
            {
                for (long done = 0; done < length && !cancellationToken.IsCancellationRequested; done += s_zeros.Length)
                {
                    _image.WriteAt(offset + done, s_zeros.AsSpan(0, (int)Math.Min(s_zeros.Length, length - done)));
                }
            }
        }
    }
}

/// <summary>A request queue's slots: the free ones on a stack, so the loop takes and returns them without allocating.</summary>
internal sealed class BlkQueue
{
    private readonly VirtioBlkRequest[] _all;
    private readonly VirtioBlkRequest[] _free;
    private int _freeCount;

    public BlkQueue(VirtioBlkDevice device, RawImageFile image, VirtioQueue queue, int requests, int bounceSize)
    {
        Queue = queue;
        _all = new VirtioBlkRequest[requests];
        _free = new VirtioBlkRequest[requests];
        for (int i = 0; i < requests; i++)
        {
            _all[i] = new VirtioBlkRequest(device, image, this, bounceSize);
            _free[i] = _all[i];
        }

        _freeCount = requests;
    }

    public VirtioQueue Queue { get; }

    /// <summary>Moves (interlocked, on the loop) when the driver takes this queue's buffers back: zero-copy steps
    /// queued before it skip their I/O. A field, for Interlocked and Volatile.</summary>
    public int Generation;

    /// <summary>This queue's zero-copy steps touching guest memory now (workers; interlocked), which a stop of the
    /// queue waits for.</summary>
    public int ZeroCopyRunning;

    public int FreeCount => _freeCount;

    public int Capacity => _free.Length;

    public VirtioBlkRequest Peek() => _free[_freeCount - 1];

    public void Take() => _freeCount--;

    public void Return(VirtioBlkRequest request) => _free[_freeCount++] = request;

    /// <summary>
    /// Takes back the slots whose completion will never run: busy (an operation set) yet not in flight. On the loop no
    /// request is half-way through its own callback, so such a slot is one whose completion a stop of the server
    /// dropped. Its chain is stale; pushing it drops it without touching the ring.
    /// </summary>
    /// <returns>How many slots came back.</returns>
    public int ReclaimDropped()
    {
        int reclaimed = 0;
        foreach (VirtioBlkRequest request in _all)
        {
            if (request.Operation != BlkOperation.None && !request.IsInFlight)
            {
                request.ReleasePins();
                if (request.Chain.IsOutstanding)
                {
                    Queue.Push(request.Chain, 0);
                }

                request.Operation = BlkOperation.None;
                Return(request);
                reclaimed++;
            }
        }

        return reclaimed;
    }
}
