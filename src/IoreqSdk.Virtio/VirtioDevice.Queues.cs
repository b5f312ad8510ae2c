using System;

namespace IoreqSdk.Virtio;

/// <content>
/// The transport-facing queue registers: what a driver writes through QueueSel/QueueNum/QueueDesc… (virtio-mmio) or
/// queue_select/queue_size/queue_desc… (virtio-pci) before it enables a queue, and its notifications.
/// </content>
public abstract partial class VirtioDevice
{
    /// <summary>The driver sets a queue's size (taken while the queue is disabled, after FEATURES_OK; checked when the queue is enabled).</summary>
    /// <param name="queueIndex">The selected queue.</param>
    /// <param name="size">The size written.</param>
    public void SetQueueSize(int queueIndex, ushort size)
    {
        if (TryGetConfigurableQueue(queueIndex, out VirtioQueue? queue))
        {
            queue.Size = size;
        }
    }

    /// <summary>The driver sets the guest-physical address of a queue's descriptor area (table or ring).</summary>
    /// <param name="queueIndex">The selected queue.</param>
    /// <param name="address">The address written.</param>
    public void SetQueueDescriptorArea(int queueIndex, ulong address)
    {
        if (TryGetConfigurableQueue(queueIndex, out VirtioQueue? queue))
        {
            queue.DescriptorArea = address;
        }
    }

    /// <summary>The driver sets the guest-physical address of a queue's driver area (split: available ring; packed: driver event suppression).</summary>
    /// <param name="queueIndex">The selected queue.</param>
    /// <param name="address">The address written.</param>
    public void SetQueueDriverArea(int queueIndex, ulong address)
    {
        if (TryGetConfigurableQueue(queueIndex, out VirtioQueue? queue))
        {
            queue.DriverArea = address;
        }
    }

    /// <summary>The driver sets the guest-physical address of a queue's device area (split: used ring; packed: device event suppression).</summary>
    /// <param name="queueIndex">The selected queue.</param>
    /// <param name="address">The address written.</param>
    public void SetQueueDeviceArea(int queueIndex, ulong address)
    {
        if (TryGetConfigurableQueue(queueIndex, out VirtioQueue? queue))
        {
            queue.DeviceArea = address;
        }
    }

    /// <summary>
    /// The driver enables a queue. The size and ring addresses are checked (size 1 to the maximum, a power of two
    /// for the split layout; alignment; no wrap at 2^64): if they break the rules the queue stays disabled, and the
    /// device sets DEVICE_NEEDS_RESET.
    /// </summary>
    /// <param name="queueIndex">The selected queue.</param>
    /// <returns>Whether the queue is enabled now.</returns>
    public bool EnableQueue(int queueIndex)
    {
        if ((uint)queueIndex >= (uint)_queues.Length)
        {
            return false;
        }

        VirtioQueue queue = _queues[queueIndex];
        if (queue.IsEnabled)
        {
            return true;
        }

        if (!TryGetConfigurableQueue(queueIndex, out _))
        {
            return false;
        }

        if (!queue.TryEnable(
                Transport.Memory,
                packed: (_driverFeatures & VirtioFeatures.RingPacked) != 0,
                eventIndex: (_driverFeatures & VirtioFeatures.EventIndex) != 0,
                indirect: (_driverFeatures & VirtioFeatures.IndirectDescriptors) != 0))
        {
            SetNeedsReset();
            return false;
        }

        return true;
    }

    /// <summary>The driver disables a queue (virtio-mmio's QueueReady = 0): it stops, and forgets its indices; buffers the device still holds are not returned.</summary>
    /// <param name="queueIndex">The selected queue.</param>
    public void DisableQueue(int queueIndex)
    {
        if ((uint)queueIndex < (uint)_queues.Length)
        {
            _queues[queueIndex].Reset();
            OnQueueDisabled(_queues[queueIndex]);
        }
    }

    /// <summary>
    /// The driver notified a queue (an available-buffer notification). Passed to
    /// <see cref="OnQueueNotified(VirtioQueue)"/> if the queue is enabled and working and DRIVER_OK is set; ignored
    /// otherwise (the device must not use a queue before DRIVER_OK, §3.1.1).
    /// </summary>
    /// <param name="queueIndex">The notified queue (as the guest wrote it).</param>
    public void NotifyQueue(int queueIndex)
    {
        if ((uint)queueIndex >= (uint)_queues.Length || (_status & VirtioDeviceStatus.DriverOk) == 0)
        {
            return;
        }

        VirtioQueue queue = _queues[queueIndex];
        if (queue.IsEnabled && !queue.IsBroken)
        {
            OnQueueNotified(queue);
        }
    }

    private bool TryGetConfigurableQueue(int queueIndex, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out VirtioQueue? queue)
    {
        // Queues are set up after FEATURES_OK (the layout depends on RING_PACKED) and while disabled (§3.1.1 step 7).
        const VirtioDeviceStatus Gate = VirtioDeviceStatus.FeaturesOk | VirtioDeviceStatus.Failed | VirtioDeviceStatus.DeviceNeedsReset;
        if ((uint)queueIndex < (uint)_queues.Length
            && (_status & Gate) == VirtioDeviceStatus.FeaturesOk
            && !_queues[queueIndex].IsEnabled)
        {
            queue = _queues[queueIndex];
            return true;
        }

        queue = null;
        return false;
    }
}
