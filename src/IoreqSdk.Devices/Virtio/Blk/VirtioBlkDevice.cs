using System;
using System.Buffers.Binary;
using System.Threading;
using IoreqSdk.Storage;
using IoreqSdk.Virtio;

namespace IoreqSdk.Devices.Virtio.Blk;

/// <summary>
/// A virtio block device (virtio 1.2 §5.2) over a raw image file: IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES,
/// one request queue per vCPU if asked (VIRTIO_BLK_F_MQ), read-only if asked. File I/O runs off the event loop as
/// reusable <see cref="OffLoopWork"/> items, one per request slot; data moves straight between the image and the
/// guest's buffers, pinned for the worker (<see cref="VirtioBlkOptions.ZeroCopy"/>), or else through each slot's bounce
/// buffer, copied to or from guest memory on the loop.
/// </summary>
/// <remarks>
/// <para>
/// Put it on a virtio transport (virtio-mmio, virtio-pci) and give it the transport's context
/// (<see cref="AttachContext(IDeviceContext)"/>, which a transport does through <see cref="IDeviceContextConsumer"/>).
/// </para>
/// <para>
/// The guest is hostile: a request whose header is short, whose sectors run past the capacity (or whose byte offset
/// would overflow), whose data is not whole sectors, whose segments exceed <c>seg_max</c>, or that writes a read-only
/// disk completes with IOERR; an unknown type with UNSUPP; a chain without a device-writable status byte is returned
/// with 0 bytes written. Nothing outside the image is read or written. Each queue has at most
/// <see cref="VirtioBlkOptions.MaxRequestsInFlight"/> requests in flight; more wait in the guest's ring. After a reset,
/// completions of requests from before it are dropped without touching guest memory or the queue.
/// </para>
/// </remarks>
public sealed partial class VirtioBlkDevice : VirtioDevice, IDeviceContextConsumer, IDisposable
{
    // Zero-copy I/O running on a worker now, between its check of its queue's generation and the end of its
    // preadv/pwritev, is counted per queue (BlkQueue.ZeroCopyRunning): what a reset, a queue disable or a DMA stop
    // waits for.

    /// <summary>Chains one pass over a queue takes at most; the rest is taken in a later pass, after the vCPUs' requests.</summary>
    public const int MaxChainsPerPass = 256;

    private readonly RawImageFile _image;
    private readonly bool _ownsImage;
    private readonly VirtioBlkOptions _options;
    private readonly BlkQueue[] _queues;
    private readonly byte[] _id = new byte[VirtioBlk.IdBytes];
    private IDeviceContext? _context;
    private IOffLoopWorker? _worker;
    private uint _epoch;

    /// <summary>Creates the device over an open image (which stays the caller's to dispose).</summary>
    /// <param name="image">The image; its length in whole 512-byte sectors is the capacity.</param>
    /// <param name="options">How to present it (defaults if <see langword="null"/>).</param>
    public VirtioBlkDevice(RawImageFile image, VirtioBlkOptions? options = null)
        : this(image, (options ?? new VirtioBlkOptions()).Validated(), ownsImage: false)
    {
    }

    private VirtioBlkDevice(RawImageFile image, VirtioBlkOptions options, bool ownsImage)
        : base(VirtioBlk.DeviceId, Features(options, image), QueueSizes(options), VirtioBlk.ConfigSize)
    {
        // The guest sees whole 512-byte sectors: a tail shorter than one is not part of the disk (as QEMU rounds a raw
        // image down), and an image shorter than one sector is no disk at all. Said here, where the device is built.
        if (image.Length < 1 << VirtioBlk.SectorShift)
        {
            throw new ArgumentException(
                FormattableString.Invariant($"The image '{image.Path}' is {image.Length} bytes, less than one 512-byte sector: give a disk image (e.g. truncate -s 64M FILE)."),
                nameof(image));
        }

        _image = image;
        _ownsImage = ownsImage;
        _options = options;
        IsReadOnly = options.ReadOnly || image.IsReadOnly;
        CapacitySectors = (ulong)image.Length >> VirtioBlk.SectorShift;
        System.Text.Encoding.ASCII.GetBytes(options.Serial, 0, options.Serial.Length, _id, 0);
        _queues = new BlkQueue[options.QueueCount];
        for (int i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new BlkQueue(this, image, GetQueue(i), options.MaxRequestsInFlight, options.BounceBufferSize);
        }

        Span<byte> config = Config;
        BinaryPrimitives.WriteUInt64LittleEndian(config.Slice(VirtioBlk.ConfigCapacity), CapacitySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(config.Slice(VirtioBlk.ConfigSegMax), (uint)options.MaxSegments);
        BinaryPrimitives.WriteUInt32LittleEndian(config.Slice(VirtioBlk.ConfigBlockSize), (uint)options.BlockSize);
        BinaryPrimitives.WriteUInt16LittleEndian(config.Slice(VirtioBlk.ConfigNumQueues), (ushort)options.QueueCount);
        uint alignment = (uint)(options.BlockSize >> VirtioBlk.SectorShift);
        if (options.Discard)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(config.Slice(VirtioBlk.ConfigMaxDiscardSectors), options.MaxRangeSectors);
            BinaryPrimitives.WriteUInt32LittleEndian(config.Slice(VirtioBlk.ConfigMaxDiscardSeg), options.MaxRanges);
            BinaryPrimitives.WriteUInt32LittleEndian(config.Slice(VirtioBlk.ConfigDiscardSectorAlignment), alignment);
        }

        if (options.WriteZeroes)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(config.Slice(VirtioBlk.ConfigMaxWriteZeroesSectors), options.MaxRangeSectors);
            BinaryPrimitives.WriteUInt32LittleEndian(config.Slice(VirtioBlk.ConfigMaxWriteZeroesSeg), options.MaxRanges);
            config[VirtioBlk.ConfigWriteZeroesMayUnmap] = 1;
        }
    }

    /// <summary>The capacity in 512-byte sectors (the image's length, rounded down).</summary>
    public ulong CapacitySectors { get; }

    /// <summary>Whether the guest sees a read-only disk.</summary>
    public bool IsReadOnly { get; }

    /// <summary>Requests completed with OK.</summary>
    public long CompletedRequests { get; private set; }

    /// <summary>Requests completed with IOERR: invalid (out of range, not whole sectors, too many segments, a short header, a write to a read-only disk, a buffer outside guest RAM) or failed by the image.</summary>
    public long FailedRequests { get; private set; }

    /// <summary>Requests completed with UNSUPP (an unknown type, a feature not negotiated, unknown range flags).</summary>
    public long UnsupportedRequests { get; private set; }

    /// <summary>Chains returned with nothing written: no device-writable status byte to answer in.</summary>
    public long MalformedRequests { get; private set; }

    /// <summary>Requests the server's worker refused (its bound reached, or the server stopping): answered IOERR.</summary>
    public long RefusedRequests { get; private set; }

    /// <summary>Completions dropped because the device or their queue was reset while the I/O ran.</summary>
    public long DroppedCompletions { get; private set; }

    /// <summary>Reads and writes whose data went straight between the image and pinned guest memory, with no copy.</summary>
    public long ZeroCopyRequests { get; private set; }

    /// <summary>Resets, queue disables and DMA stops that gave up waiting for zero-copy I/O still running
    /// (<see cref="VirtioBlkOptions.ZeroCopyResetTimeout"/>): a hung image.</summary>
    public long ResetsWithIoInFlight { get; private set; }

    /// <summary>Opens an image file and creates the device over it; the device owns the file (see <see cref="Dispose"/>).</summary>
    /// <param name="path">The image file or block device.</param>
    /// <param name="options">How to present it (defaults if <see langword="null"/>); read-only opens the file read-only.</param>
    /// <returns>The device.</returns>
    public static VirtioBlkDevice Open(string path, VirtioBlkOptions? options = null)
    {
        VirtioBlkOptions validated = (options ?? new VirtioBlkOptions()).Validated();
        RawImageFile image = RawImageFile.Open(path, validated.ReadOnly);
        try
        {
            return new VirtioBlkDevice(image, validated, ownsImage: true);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void AttachContext(IDeviceContext context)
    {
        if (context is null)
        {
            throw new ArgumentNullException(nameof(context));
        }

        if (_context is not null)
        {
            throw new InvalidOperationException("The device already has a context.");
        }

        if (_options.IoThreads > 0)
        {
            _worker = context.CreateOffLoopWorker("virtio-blk io", _options.IoThreads, _options.QueueCount * _options.MaxRequestsInFlight);
        }

        _context = context;
    }

    /// <summary>Closes the image if the device opened it (<see cref="Open"/>). Call it once the server has stopped.</summary>
    public void Dispose()
    {
        if (_ownsImage)
        {
            _image.Dispose();
        }
    }

    /// <inheritdoc/>
    protected override void OnQueueNotified(VirtioQueue queue)
    {
        if ((uint)queue.Index < (uint)_queues.Length)
        {
            Drain(_queues[queue.Index]);
        }
    }

    /// <inheritdoc/>
    protected override void OnReset()
    {
        // Requests in flight finish on the worker; their completions see the old epoch and are dropped. Their slots
        // come back then, so a driver that starts again at once may find fewer slots for a moment (backpressure).
        // Slots whose completion a stop of the server dropped never would: they come back here.
        _epoch++;
        foreach (BlkQueue slots in _queues)
        {
            DroppedCompletions += slots.ReclaimDropped();
        }

        StopZeroCopy(null);
    }

    /// <inheritdoc/>
    protected override void OnQueueDisabled(VirtioQueue queue)
    {
        if ((uint)queue.Index < (uint)_queues.Length)
        {
            StopZeroCopy(_queues[queue.Index]);
        }
    }

    /// <inheritdoc/>
    protected override void OnDmaDisabled() => StopZeroCopy(null);

    /// <summary>A zero-copy step of queue <paramref name="queueIndex"/> is about to touch guest memory (its worker):
    /// counted, in its queue, before its queue's generation is checked.</summary>
    internal void EnterZeroCopy(int queueIndex) =>
        // Full fence (interlocked): the count is visible before the generation is read; StopZeroCopy moves the
        // generation, then reads the count — one of the two sees the other (store-load on both sides, per queue).
        Interlocked.Increment(ref _queues[queueIndex].ZeroCopyRunning);

    internal void ExitZeroCopy(int queueIndex) => Interlocked.Decrement(ref _queues[queueIndex].ZeroCopyRunning);

    /// <summary>
    /// The driver took its buffers back (reset, a queue disabled, DMA stopped): zero-copy steps not yet started see
    /// their queue's generation moved and skip their I/O; those already running are waited for, on the loop, within
    /// <see cref="VirtioBlkOptions.ZeroCopyResetTimeout"/> — the driver may reuse the memory as soon as this access is
    /// answered, as QEMU's reset drains its block requests. The copy path needs nothing: its completion is dropped.
    /// </summary>
    private void StopZeroCopy(BlkQueue? only)
    {
        foreach (BlkQueue slots in _queues)
        {
            if (only is null || ReferenceEquals(slots, only))
            {
                // Full fence (interlocked): the new generation is visible before the running count is read.
                Interlocked.Increment(ref slots.Generation);
            }
        }

        // Only the steps of the queues stopped: a guest disabling one queue (even one it never enabled) must not hold
        // the loop for another queue's I/O.
        if (ZeroCopyRunning(only) != 0 && !WaitForZeroCopy(only))
        {
            ResetsWithIoInFlight++;
        }
    }

    /// <summary>Zero-copy steps running in <paramref name="only"/>, or in every queue.</summary>
    private int ZeroCopyRunning(BlkQueue? only)
    {
        if (only is not null)
        {
            return Volatile.Read(ref only.ZeroCopyRunning);
        }

        int running = 0;
        foreach (BlkQueue slots in _queues)
        {
            running += Volatile.Read(ref slots.ZeroCopyRunning);
        }

        return running;
    }

    // Apart, so that the closure is made only when there is something to wait for.
    private bool WaitForZeroCopy(BlkQueue? only) => SpinWait.SpinUntil(() => ZeroCopyRunning(only) == 0, _options.ZeroCopyResetTimeout);

    private static ulong Features(VirtioBlkOptions options, RawImageFile image)
    {
        // The ring features the core implements (packed, event index, indirect tables) and the block features asked for.
        ulong features = VirtioFeatures.Supported | VirtioBlkFeatures.SegMax | VirtioBlkFeatures.BlockSize | VirtioBlkFeatures.Flush;
        if (options.ReadOnly || image.IsReadOnly)
        {
            features |= VirtioBlkFeatures.ReadOnly;
        }

        if (options.QueueCount > 1)
        {
            features |= VirtioBlkFeatures.MultiQueue;
        }

        if (options.Discard)
        {
            features |= VirtioBlkFeatures.Discard;
        }

        if (options.WriteZeroes)
        {
            features |= VirtioBlkFeatures.WriteZeroes;
        }

        return features;
    }

    private static ushort[] QueueSizes(VirtioBlkOptions options)
    {
        var sizes = new ushort[options.QueueCount];
        sizes.AsSpan().Fill(options.QueueSize);
        return sizes;
    }

    /// <summary>
    /// Starts what the guest posted, as far as free slots go. With no slot free the queue's notifications stay
    /// disabled and the rest waits in the ring: the next completion drains again.
    /// </summary>
    private void Drain(BlkQueue slots)
    {
        VirtioQueue queue = slots.Queue;
        int budget = MaxChainsPerPass;
        do
        {
            queue.DisableNotifications();
            while (slots.FreeCount > 0)
            {
                if (budget-- == 0)
                {
                    // Requests answered on the spot (GET_ID, a malformed or out-of-range one) give their slot straight
                    // back: a guest re-posting them as fast as they come back would otherwise hold the loop here.
                    YieldPass(queue);
                    return;
                }

                VirtioBlkRequest request = slots.Peek();
                if (!queue.TryPop(request.Chain))
                {
                    break;
                }

                slots.Take();
                Start(request);
            }

            if (slots.FreeCount == 0)
            {
                queue.SignalUsed();
                return;
            }
        }
        while (queue.EnableNotifications());

        queue.SignalUsed();
    }

    /// <summary>Answers a request in its status byte and returns the chain and the slot.</summary>
    /// <param name="request">The request.</param>
    /// <param name="status">The status.</param>
    /// <param name="dataWritten">Bytes written into the writable part before the status byte.</param>
    private void Finish(VirtioBlkRequest request, byte status, uint dataWritten)
    {
        switch (status)
        {
            case VirtioBlk.StatusOk:
                CompletedRequests++;
                break;
            case VirtioBlk.StatusUnsupported:
                UnsupportedRequests++;
                break;
            default:
                FailedRequests++;
                break;
        }

        // A request refused before its I/O ran still holds its pins (and a read its place in the reset's count).
        request.ReleasePins();
        VirtioDescriptorChain chain = request.Chain;
        Span<byte> answer = stackalloc byte[1];
        answer[0] = status;
        bool answered = chain.TryWrite(request.StatusOffset, answer);
        if (!answered)
        {
            // The status byte is not guest RAM: nothing can be said; the chain goes back empty.
            MalformedRequests++;
        }

        request.Queue.Queue.Push(chain, answered ? dataWritten + 1 : 0);
        request.Operation = BlkOperation.None;
        request.Queue.Return(request);
    }

    /// <summary>Returns a chain that cannot carry a status (no device-writable byte) with nothing written.</summary>
    private void Reject(VirtioBlkRequest request)
    {
        MalformedRequests++;
        request.Queue.Queue.Push(request.Chain, 0);
        request.Operation = BlkOperation.None;
        request.Queue.Return(request);
    }
}
