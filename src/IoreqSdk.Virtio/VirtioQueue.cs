using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using IoreqSdk.Memory;

namespace IoreqSdk.Virtio;

/// <summary>
/// One virtqueue of a <see cref="VirtioDevice"/>, split or packed (virtio 1.2 §2.7, §2.8): the device side that pops
/// the buffers the driver makes available and pushes them back as used, with event-index suppression in both
/// directions and indirect descriptors.
/// </summary>
/// <remarks>
/// <para>
/// The loop a device runs when notified (it never misses a buffer posted while it was working):
/// <code>
/// do
/// {
///     queue.DisableNotifications();
///     while (queue.TryPop(chain)) { /* read chain.Readable, write chain.Writable */ queue.Push(chain, written); }
/// }
/// while (queue.EnableNotifications());
/// queue.SignalUsed();
/// </code>
/// </para>
/// <para>
/// Every chain is validated before it is handed out. Anything a correct driver never writes — an index out of range,
/// a loop, a chain longer than the queue, nested or malformed indirect tables, a buffer wrapping at 2^64, readable
/// after writable, rings outside RAM, an available index that jumps, packed wrap counters that disagree — breaks the
/// queue: <see cref="Error"/> says why, it hands out nothing more, and the device sets DEVICE_NEEDS_RESET (with a
/// configuration-change notification once the driver is running). Nothing throws on guest data.
/// </para>
/// <para>Not thread-safe: the device uses its queues from its own thread.</para>
/// </remarks>
[SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix", Justification = "A virtqueue is the specification's name; it is not a collection.")]
public sealed partial class VirtioQueue
{
    private const int DescriptorSize = 16;
    private const ushort DescNext = 1;
    private const ushort DescWrite = 2;
    private const ushort DescIndirect = 4;

    private readonly VirtioDevice _device;
    private IGuestMemory? _memory;
    private byte[] _indirectTable = Array.Empty<byte>();
    private uint _epoch;
    private bool _eventIndex;
    private bool _indirect;
    private bool _notificationsEnabled = true;

    // Used slots (split: entries, packed: descriptors) written since the last SignalUsed decision.
    private int _usedSinceSignal;

    internal VirtioQueue(VirtioDevice device, int index, ushort maxSize)
    {
        _device = device;
        Index = index;
        MaxSize = maxSize;
        Reset();
    }

    /// <summary>The queue's index in its device.</summary>
    public int Index { get; }

    /// <summary>The largest size the driver may choose (QueueNumMax).</summary>
    public ushort MaxSize { get; }

    /// <summary>The size the driver chose (QueueNum / queue_size); <see cref="MaxSize"/> after reset.</summary>
    public ushort Size { get; internal set; }

    /// <summary>The guest-physical address of the descriptor table (split) or descriptor ring (packed).</summary>
    public ulong DescriptorArea { get; internal set; }

    /// <summary>The guest-physical address of the available ring (split) or driver event suppression structure (packed).</summary>
    public ulong DriverArea { get; internal set; }

    /// <summary>The guest-physical address of the used ring (split) or device event suppression structure (packed).</summary>
    public ulong DeviceArea { get; internal set; }

    /// <summary>Whether the driver enabled the queue (and its configuration passed the checks).</summary>
    public bool IsEnabled { get; private set; }

    /// <summary>Whether the queue uses the packed layout (VIRTIO_F_RING_PACKED negotiated when it was enabled).</summary>
    public bool IsPacked { get; private set; }

    /// <summary>Why the queue is broken (or refused to enable), or <see cref="VirtioQueueError.None"/>.</summary>
    public VirtioQueueError Error { get; private set; }

    /// <summary>Whether the queue is broken: it hands out no buffers until the driver resets the device.</summary>
    public bool IsBroken => Error != VirtioQueueError.None;

    /// <summary>The reset epoch: moves on at every reset or disable, which makes the chains popped before stale.</summary>
    internal uint Epoch => _epoch;

    // Whether buffers are handed out and taken back: enabled, not broken, the device running. Asked at every pop and
    // push, so kept in one field (three loads and a pointer chase each time before) and recomputed by RefreshLive
    // wherever one of its inputs changes: here (enable, reset, refuse, break) and in the device (DRIVER_OK,
    // DEVICE_NEEDS_RESET, reset).
    private bool _live;

    private bool IsLive => _live;

    /// <summary>Recomputes whether the queue is live, after its state or the device's status changed.</summary>
    internal void RefreshLive() =>
        _live = IsEnabled && Error == VirtioQueueError.None && _device.IsRunning;

    /// <summary>
    /// Takes the next available buffer, if there is one: reads its descriptor chain once into <paramref name="chain"/>
    /// and validates it.
    /// </summary>
    /// <param name="chain">A chain object that holds no buffer (not outstanding); filled on success.</param>
    /// <returns>
    /// <see langword="true"/> with <paramref name="chain"/> filled; <see langword="false"/> if nothing is available,
    /// the queue is not live (disabled, broken, before DRIVER_OK, device needing reset), or the chain was malformed
    /// (then the queue is broken).
    /// </returns>
    public bool TryPop(VirtioDescriptorChain chain)
    {
        if (chain is null)
        {
            ThrowHelper.ThrowArgument(nameof(chain), "A chain is required.");
        }

        if (chain.IsOutstanding)
        {
            ThrowHelper.ThrowInvalidOperation("The chain still holds a buffer; push it back before reusing it.");
        }

        if (!IsLive)
        {
            return false;
        }

        return IsPacked ? PackedTryPop(chain) : SplitTryPop(chain);
    }

    /// <summary>
    /// Returns a buffer to the driver as used. Does not notify: call <see cref="SignalUsed"/> after a batch.
    /// </summary>
    /// <param name="chain">A chain popped from this queue and not pushed yet.</param>
    /// <param name="bytesWritten">How many bytes the device wrote into the writable part (from its start).</param>
    /// <returns>
    /// <see langword="true"/> if the buffer was returned; <see langword="false"/> if the queue was reset or disabled
    /// since the pop (the buffer belongs to the past; it is dropped) or is broken. Either way the chain is free again.
    /// </returns>
    public bool Push(VirtioDescriptorChain chain, uint bytesWritten)
    {
        if (chain is null)
        {
            ThrowHelper.ThrowArgument(nameof(chain), "A chain is required.");
        }

        if (!ReferenceEquals(chain.Owner, this))
        {
            ThrowHelper.ThrowInvalidOperation("The chain was not popped from this queue, or was already pushed.");
        }

        if (bytesWritten > chain.WritableLength)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(bytesWritten), "More bytes written than the chain's writable part holds.");
        }

        bool current = chain.Epoch == _epoch && IsLive;
        if (current)
        {
            current = IsPacked ? PackedPush(chain, bytesWritten) : SplitPush(chain, bytesWritten);
        }

        chain.Release();
        return current;
    }

    /// <summary>
    /// Decides whether the buffers pushed since the last call need a used-buffer notification (honouring the driver's
    /// used_event, its no-interrupt flag, or the packed driver event suppression), and if so asks the transport for it.
    /// </summary>
    /// <returns>Whether a notification was requested.</returns>
    public bool SignalUsed()
    {
        if (!IsLive || _usedSinceSignal == 0)
        {
            return false;
        }

        // Full fence: the used index/flags just published must be visible to the driver before its suppression is
        // read (see VirtioBarriers.StoreThenLoad).
        VirtioBarriers.StoreThenLoad();
        bool notify = IsPacked ? PackedNeedsNotification() : SplitNeedsNotification();
        _usedSinceSignal = 0;
        if (notify && IsLive)
        {
            _device.Transport.NotifyUsedBuffers(Index);
            return true;
        }

        return false;
    }

    /// <summary>Asks the driver not to notify this queue (while the device is busy draining it anyway). Only a hint to the driver.</summary>
    public void DisableNotifications()
    {
        if (!IsLive)
        {
            return;
        }

        _notificationsEnabled = false;
        if (IsPacked)
        {
            PackedDisableNotifications();
        }
        else
        {
            SplitDisableNotifications();
        }
    }

    /// <summary>
    /// Asks the driver to notify this queue again (publishing avail_event, or the packed device event, when
    /// VIRTIO_F_EVENT_IDX is negotiated), then checks for buffers posted in the meantime.
    /// </summary>
    /// <returns><see langword="true"/> if a buffer is available now (pop again before relying on a notification).</returns>
    public bool EnableNotifications()
    {
        if (!IsLive)
        {
            return false;
        }

        _notificationsEnabled = true;
        return IsPacked ? PackedEnableNotifications() : SplitEnableNotifications();
    }

    internal bool TryEnable(IGuestMemory memory, bool packed, bool eventIndex, bool indirect)
    {
        int size = Size;
        if (size == 0 || size > MaxSize || (!packed && (size & (size - 1)) != 0))
        {
            return Refuse(VirtioQueueError.InvalidSize);
        }

        // The alignment tables of virtio 1.2 (split and packed virtqueues): descriptors 16; split avail 2 and used 4;
        // packed event suppression structures 4.
        ulong driverAlign = packed ? 4UL : 2UL;
        if (DescriptorArea % DescriptorSize != 0 || DriverArea % driverAlign != 0 || DeviceArea % 4 != 0)
        {
            return Refuse(VirtioQueueError.MisalignedRing);
        }

        ulong driverLength = packed ? 4UL : 6UL + (2UL * (ulong)size);
        ulong deviceLength = packed ? 4UL : 6UL + (8UL * (ulong)size);
        if (Wraps(DescriptorArea, DescriptorSize * (ulong)size) || Wraps(DriverArea, driverLength) || Wraps(DeviceArea, deviceLength))
        {
            return Refuse(VirtioQueueError.RingAddressWraps);
        }

        _memory = memory;
        ResetDirect(packed ? null : memory);
        IsPacked = packed;
        _eventIndex = eventIndex;
        _indirect = indirect;
        Error = VirtioQueueError.None;
        IsEnabled = true;
        RefreshLive();
        return true;
    }

    internal void Reset()
    {
        IsEnabled = false;
        IsPacked = false;
        Error = VirtioQueueError.None;
        Size = MaxSize;
        DescriptorArea = 0;
        DriverArea = 0;
        DeviceArea = 0;
        _memory = null;
        ResetDirect(null);
        _eventIndex = false;
        _indirect = false;
        _notificationsEnabled = true;
        _usedSinceSignal = 0;
        ResetSplit();
        ResetPacked();

        // Chains popped before now are stale: Push drops them.
        _epoch++;
        RefreshLive();
    }

    private static bool Wraps(ulong address, ulong length) => length != 0 && address > ulong.MaxValue - (length - 1);

    /// <summary>vring_need_event: whether <paramref name="eventIndex"/> lies in [old, new) in 16-bit ring arithmetic.</summary>
    private static bool NeedEvent(ushort eventIndex, ushort newIndex, ushort oldIndex) =>
        (ushort)(newIndex - eventIndex - 1) < (ushort)(newIndex - oldIndex);

    private bool Refuse(VirtioQueueError error)
    {
        Error = error;
        RefreshLive();
        return false;
    }

    /// <summary>Breaks the queue: nothing more is handed out, and the device needs a reset.</summary>
    private bool Break(VirtioQueueError error)
    {
        if (Error == VirtioQueueError.None)
        {
            Error = error;
        }

        // Not live from here, whether or not the device needed a reset already (then SetNeedsReset refreshes nothing).
        RefreshLive();
        _device.SetNeedsReset();
        return false;
    }

    private bool Fail(VirtioDescriptorChain chain, VirtioQueueError error)
    {
        // A failed pop leaves the chain empty, not holding a half-walked chain (or, before the walk, the last one's).
        chain.Release();
        chain.ClearParts();
        return Break(error);
    }

    private bool ReadU16(ulong address, out ushort value)
    {
        Span<byte> bytes = stackalloc byte[2];
        if (_memory!.TryRead(address, bytes))
        {
            value = BinaryPrimitives.ReadUInt16LittleEndian(bytes);
            return true;
        }

        value = 0;
        return false;
    }

    private bool WriteU16(ulong address, ushort value)
    {
        Span<byte> bytes = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        return _memory!.TryWrite(address, bytes);
    }
}
