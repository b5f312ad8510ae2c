using System;

using IoreqSdk.Virtio;

namespace IoreqSdk.Devices.Virtio.Blk;

/// <summary>How a <see cref="VirtioBlkDevice"/> presents its image; every field has a default that suits a Linux guest.</summary>
public sealed class VirtioBlkOptions
{
    /// <summary>The most request queues offered (VIRTIO_BLK_F_MQ).</summary>
    public const int MaxQueues = 16;

    /// <summary>Whether the guest sees a read-only disk (VIRTIO_BLK_F_RO); writes, discards and write-zeroes answer IOERR. An image opened read-only is always presented read-only.</summary>
    public bool ReadOnly { get; set; }

    /// <summary>Request queues: one per vCPU is the usual choice (1 to <see cref="MaxQueues"/>; 1 by default). More than one offers VIRTIO_BLK_F_MQ.</summary>
    public int QueueCount { get; set; } = 1;

    /// <summary>Each queue's maximum size (a power of two, 2 to 1024; 128 by default).</summary>
    public ushort QueueSize { get; set; } = 128;

    /// <summary>
    /// Requests each queue has in flight at most (1 to 64; 8 by default). A guest that posts more finds them waiting in
    /// its ring until a request completes (backpressure). The server's <c>MaxOffLoopWork</c> should be at least
    /// <see cref="QueueCount"/> × this, or a busy server answers some requests with IOERR.
    /// </summary>
    public int MaxRequestsInFlight { get; set; } = 8;

    /// <summary>
    /// The bytes one request moves per off-loop step, its bounce buffer's size (4 KiB to 4 MiB, a multiple of 512;
    /// 64 KiB by default). A larger request is done in several steps. Memory held: queues × requests × this.
    /// </summary>
    public int BounceBufferSize { get; set; } = 64 * 1024;

    /// <summary>
    /// Whether a request's data moves straight between the image and the guest's buffers, pinned for the worker's
    /// <c>preadv</c>/<c>pwritev</c> (<see cref="Memory.IPinnableGuestMemory"/>), instead of through the bounce buffer and
    /// a copy on the loop (<see langword="true"/> by default). A request that cannot be pinned — its memory is not the
    /// server's, or it is larger than <see cref="VirtioDescriptorChain.MaxPinnedLength"/> — still takes the bounce buffer.
    /// </summary>
    public bool ZeroCopy { get; set; } = true;

    /// <summary>
    /// How long a reset, a queue disable or a DMA stop (Bus Master Enable cleared) waits, on the loop, for zero-copy
    /// I/O a worker is doing in the driver's buffers right then (5 s by default; 0 to 60 s). After such an access the
    /// driver owns its memory again — Linux's virtio-mmio driver reuses it as soon as its write of 0 to Status completes
    /// — so the access is not answered while a worker may still read or write it, as QEMU drains its block requests in
    /// a reset. Steps not yet started skip their I/O instead, so only a step already in the kernel is waited for; one
    /// that outlives the wait (a hung image) is counted in <see cref="VirtioBlkDevice.ResetsWithIoInFlight"/>.
    /// </summary>
    public TimeSpan ZeroCopyResetTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Data segments per request at most (<c>seg_max</c>; 1 to <see cref="QueueSize"/> − 2; 126 by default).</summary>
    public int MaxSegments { get; set; } = 126;

    /// <summary>
    /// Threads of the device's own that do its file I/O in parallel (0 to 16; 1 by default). With threads of its own
    /// the device's requests in flight (<see cref="QueueCount"/> × <see cref="MaxRequestsInFlight"/>) bound its worker,
    /// so an offload is never refused. 0 uses the server's one worker instead, shared with every device of the server
    /// and bounded by its <see cref="Server.IoreqServerOptions.MaxOffLoopWork"/>: a request refused there fails with
    /// IOERR, so give the server at least the device's requests in flight.
    /// </summary>
    public int IoThreads { get; set; } = 1;

    /// <summary>The logical block size reported (<c>blk_size</c>: 512 to 4096, a power of two; 512 by default).</summary>
    public int BlockSize { get; set; } = 512;

    /// <summary>The serial number GET_ID returns (ASCII, at most 20 bytes).</summary>
    public string Serial { get; set; } = "ioreqsdk-blk";

    /// <summary>Whether DISCARD is offered (on by default; the range is punched out of the file when the file system can).</summary>
    public bool Discard { get; set; } = true;

    /// <summary>Whether WRITE_ZEROES is offered (on by default).</summary>
    public bool WriteZeroes { get; set; } = true;

    /// <summary>Sectors one discard or write-zeroes range covers at most (1 to 2^22; 2^16, 32 MiB, by default).</summary>
    public uint MaxRangeSectors { get; set; } = 1u << 16;

    /// <summary>Ranges one discard or write-zeroes request carries at most (1 to 256; 16 by default; also bounded by the bounce buffer).</summary>
    public uint MaxRanges { get; set; } = 16;

    internal VirtioBlkOptions Validated()
    {
        Check(QueueCount is >= 1 and <= MaxQueues, nameof(QueueCount), $"1 to {MaxQueues} queues");
        Check(QueueSize is >= 2 and <= 1024 && (QueueSize & (QueueSize - 1)) == 0, nameof(QueueSize), "a power of two, 2 to 1024");
        Check(MaxRequestsInFlight is >= 1 and <= 64, nameof(MaxRequestsInFlight), "1 to 64");
        Check(BounceBufferSize is >= 4096 and <= 4 << 20 && BounceBufferSize % VirtioBlk.SectorSize == 0, nameof(BounceBufferSize), "4 KiB to 4 MiB, a multiple of 512");
        Check(MaxSegments >= 1 && MaxSegments <= QueueSize - 2, nameof(MaxSegments), "1 to QueueSize - 2");
        Check(IoThreads is >= 0 and <= 16, nameof(IoThreads), "0 to 16");
        Check(BlockSize is >= 512 and <= 4096 && (BlockSize & (BlockSize - 1)) == 0, nameof(BlockSize), "a power of two, 512 to 4096");
        Check(Serial is not null && Serial.Length <= VirtioBlk.IdBytes && IsAscii(Serial), nameof(Serial), "ASCII, at most 20 characters");
        Check(MaxRangeSectors is >= 1 and <= 1u << 22, nameof(MaxRangeSectors), "1 to 2^22");
        Check(ZeroCopyResetTimeout >= TimeSpan.Zero && ZeroCopyResetTimeout <= TimeSpan.FromSeconds(60), nameof(ZeroCopyResetTimeout), "0 to 60 s");
        Check(MaxRanges is >= 1 and <= 256 && MaxRanges * VirtioBlk.RangeSize <= BounceBufferSize, nameof(MaxRanges), "1 to 256, and 16 bytes each within the bounce buffer");
        return (VirtioBlkOptions)MemberwiseClone();
    }

    private static bool IsAscii(string value)
    {
        foreach (char c in value)
        {
            if (c > 0x7F)
            {
                return false;
            }
        }

        return true;
    }

    private static void Check(bool valid, string name, string what)
    {
        if (!valid)
        {
            throw new ArgumentOutOfRangeException(name, $"{name}: {what}.");
        }
    }
}
