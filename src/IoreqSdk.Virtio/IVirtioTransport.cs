using IoreqSdk.Memory;

namespace IoreqSdk.Virtio;

/// <summary>
/// What a <see cref="VirtioDevice"/> needs from the transport that exposes it (virtio-mmio, virtio-pci): the guest's
/// memory, and a way to send the driver the two kinds of notification. The transport decides what a notification
/// is on the wire (an interrupt-status bit and a line, an MSI-X vector, …).
/// </summary>
/// <remarks>
/// Called on the device's thread (the server's event loop), from inside the transport's own calls into the device
/// or from the device's queue processing. The transport must not call back into the device synchronously from these.
/// </remarks>
public interface IVirtioTransport
{
    /// <summary>Guest RAM as the device may address it; every ring, table and buffer access goes through it.</summary>
    IGuestMemory Memory { get; }

    /// <summary>A used-buffer notification for queue <paramref name="queueIndex"/> (virtio 1.2 §2.3): the device has returned buffers and event suppression allows telling the driver.</summary>
    /// <param name="queueIndex">The queue's index.</param>
    void NotifyUsedBuffers(int queueIndex);

    /// <summary>A configuration-change notification (virtio 1.2 §2.3): the config space changed, or the device set <see cref="VirtioDeviceStatus.DeviceNeedsReset"/>.</summary>
    void NotifyConfigChange();
}
