namespace IoreqSdk.Devices.Virtio.Blk;

/// <summary>The virtio-blk feature bits the device implements (virtio 1.2 §5.2.3).</summary>
public static class VirtioBlkFeatures
{
    /// <summary>VIRTIO_BLK_F_SEG_MAX (2): <c>seg_max</c> in the config bounds the data segments of a request.</summary>
    public const ulong SegMax = 1UL << 2;

    /// <summary>VIRTIO_BLK_F_RO (5): the disk is read-only.</summary>
    public const ulong ReadOnly = 1UL << 5;

    /// <summary>VIRTIO_BLK_F_BLK_SIZE (6): <c>blk_size</c> in the config is the logical block size.</summary>
    public const ulong BlockSize = 1UL << 6;

    /// <summary>VIRTIO_BLK_F_FLUSH (9): the FLUSH command; without it the device writes through.</summary>
    public const ulong Flush = 1UL << 9;

    /// <summary>VIRTIO_BLK_F_MQ (12): <c>num_queues</c> request queues.</summary>
    public const ulong MultiQueue = 1UL << 12;

    /// <summary>VIRTIO_BLK_F_DISCARD (13): the DISCARD command and its config limits.</summary>
    public const ulong Discard = 1UL << 13;

    /// <summary>VIRTIO_BLK_F_WRITE_ZEROES (14): the WRITE_ZEROES command and its config limits.</summary>
    public const ulong WriteZeroes = 1UL << 14;
}

/// <summary>Request types, status values and config offsets of virtio-blk (virtio 1.2 §5.2.4, §5.2.6).</summary>
internal static class VirtioBlk
{
    public const ushort DeviceId = 2;
    public const int SectorSize = 512;
    public const int SectorShift = 9;
    public const int HeaderSize = 16;
    public const int RangeSize = 16;
    public const int IdBytes = 20;

    public const uint TypeIn = 0;
    public const uint TypeOut = 1;
    public const uint TypeFlush = 4;
    public const uint TypeGetId = 8;
    public const uint TypeDiscard = 11;
    public const uint TypeWriteZeroes = 13;

    public const byte StatusOk = 0;
    public const byte StatusIoError = 1;
    public const byte StatusUnsupported = 2;

    /// <summary>The unmap flag of a discard / write-zeroes range.</summary>
    public const uint FlagUnmap = 1;

    // struct virtio_blk_config, packed, up to secure_erase_sector_alignment (72 bytes; zoned fields not offered).
    public const int ConfigCapacity = 0;
    public const int ConfigSizeMax = 8;
    public const int ConfigSegMax = 12;
    public const int ConfigBlockSize = 20;
    public const int ConfigNumQueues = 34;
    public const int ConfigMaxDiscardSectors = 36;
    public const int ConfigMaxDiscardSeg = 40;
    public const int ConfigDiscardSectorAlignment = 44;
    public const int ConfigMaxWriteZeroesSectors = 48;
    public const int ConfigMaxWriteZeroesSeg = 52;
    public const int ConfigWriteZeroesMayUnmap = 56;
    public const int ConfigSize = 72;
}
