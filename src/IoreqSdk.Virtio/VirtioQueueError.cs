namespace IoreqSdk.Virtio;

/// <summary>Why a queue refused to be enabled or stopped processing: each is something a correct driver never does.</summary>
public enum VirtioQueueError
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The queue size is 0, above the device's maximum, or (split layout) not a power of two.</summary>
    InvalidSize,

    /// <summary>A ring area is not aligned as the layout requires (descriptors 16; split avail 2 and used 4; packed event structures 4).</summary>
    MisalignedRing,

    /// <summary>A ring area runs past the end of the 64-bit address space.</summary>
    RingAddressWraps,

    /// <summary>A ring, descriptor or indirect table is not in guest RAM (a read or write through <see cref="IoreqSdk.Memory.IGuestMemory"/> failed).</summary>
    RingNotInRam,

    /// <summary>The driver's available index moved ahead of the device by more than the queue size.</summary>
    AvailIndexJump,

    /// <summary>A head or next index names no descriptor of its table.</summary>
    DescriptorIndexOutOfRange,

    /// <summary>A chain has more descriptors than the queue size (this is how a next-loop ends), or an indirect table more entries.</summary>
    ChainTooLong,

    /// <summary>A descriptor has the indirect flag, but VIRTIO_F_INDIRECT_DESC was not negotiated.</summary>
    IndirectNotNegotiated,

    /// <summary>A descriptor in an indirect table is itself indirect.</summary>
    NestedIndirect,

    /// <summary>An indirect table's length is zero or not a multiple of 16.</summary>
    IndirectLengthInvalid,

    /// <summary>A descriptor has both the indirect and the next flag.</summary>
    IndirectWithNext,

    /// <summary>A packed-ring list mixes direct descriptors and an indirect one.</summary>
    MixedIndirectChain,

    /// <summary>A buffer's address plus length wraps at 2^64.</summary>
    BufferAddressWraps,

    /// <summary>A device-readable descriptor follows a device-writable one (the specification puts readable first).</summary>
    WritableBeforeReadable,

    /// <summary>A packed-ring descriptor after the first of its list is not marked available for the expected wrap counter.</summary>
    PackedWrapCounterMismatch,
}
