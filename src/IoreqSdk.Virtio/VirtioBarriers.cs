using System.Runtime.CompilerServices;
using System.Threading;

namespace IoreqSdk.Virtio;

/// <summary>
/// The orderings a virtqueue needs against the guest's vCPUs, which read and write the same rings concurrently.
/// </summary>
/// <remarks>
/// Guest memory is reached through <see cref="IoreqSdk.Memory.IGuestMemory"/>, whose reads and writes are opaque
/// copies: .NET has no stand-alone acquire or release fence to put between two such copies (Volatile.Read/Write
/// order only their own access), so every site uses a full fence (<see cref="Interlocked.MemoryBarrier"/>: a locked
/// instruction on x64, <c>dmb ish</c> on Arm64). That is stronger than Linux's virtio_rmb/virtio_wmb, and exactly its
/// virtio_mb. When guest memory becomes spans over mapped pages, the acquire and release sites can become
/// Volatile.Read/Volatile.Write of the index or flags field itself.
/// </remarks>
internal static class VirtioBarriers
{
    /// <summary>
    /// Acquire, after reading the field that says the driver published something (split avail.idx, a packed
    /// descriptor's flags) and before reading what it published (ring entries, descriptors): the driver wrote those
    /// first and then the index/flags with a write barrier, and this pairs with it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AfterPublishedIndexRead() => Interlocked.MemoryBarrier();

    /// <summary>
    /// Release, after writing a used element (split ring entry, packed id and length) and before publishing it
    /// (split used.idx, packed flags): the driver reads the index/flags, then the element, and must never see the
    /// index of an element not yet written.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void BeforePublish() => Interlocked.MemoryBarrier();

    /// <summary>
    /// Full (store-load), after publishing used buffers and before reading the driver's suppression (used_event,
    /// avail flags, driver event suppression) — and after re-enabling driver notifications and before re-checking for
    /// new buffers. Without it the load may be satisfied before the store is visible: the driver, having seen the old
    /// index, re-enables interrupts (or posts a buffer without kicking) while the device reads the stale suppression,
    /// and a notification is lost for good.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreThenLoad() => Interlocked.MemoryBarrier();
}
