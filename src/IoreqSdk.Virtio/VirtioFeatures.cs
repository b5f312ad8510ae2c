namespace IoreqSdk.Virtio;

/// <summary>
/// Feature bits (as 64-bit masks) that belong to the virtio core rather than to a device type (virtio 1.2 §2.2, §6).
/// Bits 0–23 and 50–63 are the device type's own; bits 24–40 are reserved for the queue and negotiation mechanisms
/// and 41–49 for future extensions. Of those reserved bits a device may offer only the ones the SDK implements.
/// </summary>
public static class VirtioFeatures
{
    /// <summary>VIRTIO_F_INDIRECT_DESC (bit 28): descriptors may point at indirect descriptor tables.</summary>
    public const ulong IndirectDescriptors = 1UL << 28;

    /// <summary>VIRTIO_F_EVENT_IDX (bit 29): used_event and avail_event (or the packed ring's descriptor events) suppress notifications.</summary>
    public const ulong EventIndex = 1UL << 29;

    /// <summary>VIRTIO_F_VERSION_1 (bit 32): the device follows virtio 1.x. Always offered; a driver that does not accept it is refused.</summary>
    public const ulong Version1 = 1UL << 32;

    /// <summary>
    /// VIRTIO_F_ACCESS_PLATFORM (bit 33): buffer addresses go through a platform translation (on Xen, grant references).
    /// Reserved for grant-based DMA; not offered yet.
    /// </summary>
    public const ulong AccessPlatform = 1UL << 33;

    /// <summary>VIRTIO_F_RING_PACKED (bit 34): the queues use the packed layout.</summary>
    public const ulong RingPacked = 1UL << 34;

    /// <summary>Every core bit a device may offer today.</summary>
    public const ulong Supported = IndirectDescriptors | EventIndex | Version1 | RingPacked;

    /// <summary>The bits the specification reserves: 24–40 for the queue and feature negotiation mechanisms, 41–49 for future extensions.</summary>
    public const ulong ReservedRange = ((1UL << 50) - 1) & ~((1UL << 24) - 1);
}
