using System;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>
/// A virtio device's transport as a simulated guest's driver reaches it — every access a real vCPU access to the
/// device's registers (virtio-mmio's register block, virtio-pci's capabilities and BARs), so a test exercises the
/// server's transport exactly as Linux's <c>virtio_mmio</c> or <c>virtio_pci</c> would. Written from the virtio 1.2
/// specification (§4.1 PCI, §4.2 MMIO), not from the SDK's device side, so that each checks the other.
/// </summary>
/// <remarks>
/// Everything a transport-independent driver (probe, negotiate, set up queues, kick, take interrupts, reset) needs,
/// and nothing it would not: vectors, notify multipliers and register layouts stay inside each transport.
/// </remarks>
public abstract class GuestVirtioTransport
{
    private protected GuestVirtioTransport()
    {
    }

    /// <summary>The virtio device type the transport reports (1 net, 2 block, 3 console, 4 entropy, …).</summary>
    public abstract ushort DeviceType { get; }

    /// <summary>Reads the device status register.</summary>
    /// <returns>The status bits.</returns>
    public abstract byte ReadStatus();

    /// <summary>Writes the device status register (0 resets the device).</summary>
    /// <param name="status">The status bits.</param>
    public abstract void WriteStatus(byte status);

    /// <summary>Reads all 64 device feature bits (both select words).</summary>
    /// <returns>The features the device offers.</returns>
    public abstract ulong ReadDeviceFeatures();

    /// <summary>Writes all 64 driver feature bits (both select words).</summary>
    /// <param name="features">The features the driver accepts.</param>
    public abstract void WriteDriverFeatures(ulong features);

    /// <summary>Reads the configuration generation counter.</summary>
    /// <returns>The counter.</returns>
    public abstract uint ReadConfigGeneration();

    /// <summary>Reads the device-specific configuration space.</summary>
    /// <param name="offset">The offset in it.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <returns>The value, little-endian.</returns>
    public abstract uint ReadConfig(int offset, int size);

    /// <summary>Writes the device-specific configuration space.</summary>
    /// <param name="offset">The offset in it.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <param name="value">The value, little-endian.</param>
    public abstract void WriteConfig(int offset, int size, uint value);

    /// <summary>Selects queue <paramref name="queue"/> and reads its maximum size; 0 when the queue does not exist.</summary>
    /// <param name="queue">The queue's index.</param>
    /// <returns>The largest size the device accepts.</returns>
    public abstract ushort ReadQueueMaxSize(int queue);

    /// <summary>
    /// Programs queue <paramref name="queue"/>: its size and the guest-physical addresses of its three areas, and,
    /// on a transport with message interrupts, the vector the transport chose for it.
    /// </summary>
    /// <param name="queue">The queue's index.</param>
    /// <param name="size">The size the driver chose.</param>
    /// <param name="descriptorArea">The descriptor table (split) or ring (packed).</param>
    /// <param name="driverArea">The available ring (split) or driver event suppression structure (packed).</param>
    /// <param name="deviceArea">The used ring (split) or device event suppression structure (packed).</param>
    public abstract void ConfigureQueue(int queue, ushort size, ulong descriptorArea, ulong driverArea, ulong deviceArea);

    /// <summary>Enables queue <paramref name="queue"/> (QueueReady / queue_enable = 1).</summary>
    /// <param name="queue">The queue's index.</param>
    public abstract void EnableQueue(int queue);

    /// <summary>Reads back whether queue <paramref name="queue"/> is enabled.</summary>
    /// <param name="queue">The queue's index.</param>
    /// <returns>Whether the device reports it ready.</returns>
    public abstract bool IsQueueEnabled(int queue);

    /// <summary>Sends an available-buffer notification for queue <paramref name="queue"/> (a doorbell write).</summary>
    /// <param name="queue">The queue's index.</param>
    public abstract void Notify(int queue);

    /// <summary>
    /// Whether the device signalled the driver since the last <see cref="TakeInterrupts"/>: its line is asserted, or
    /// a message the transport's vectors name arrived.
    /// </summary>
    public abstract bool InterruptPending { get; }

    /// <summary>
    /// Handles the device's interrupt as the driver's handler does — reads and acknowledges virtio-mmio's
    /// InterruptStatus, reads (and so clears) virtio-pci's ISR, or consumes the messages received — and says why
    /// the device interrupted.
    /// </summary>
    /// <returns>The causes seen (none when nothing was pending).</returns>
    public abstract GuestVirtioInterrupts TakeInterrupts();
}

/// <summary>Why a virtio device interrupted its driver (the bits of virtio-mmio's InterruptStatus and virtio-pci's ISR).</summary>
[Flags]
public enum GuestVirtioInterrupts
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>The device used buffers in a queue.</summary>
    UsedBuffers = 1,

    /// <summary>The device's configuration changed (or it needs a reset).</summary>
    ConfigChange = 2,
}
