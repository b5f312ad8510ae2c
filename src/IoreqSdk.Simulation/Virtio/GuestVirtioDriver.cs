using System;
using System.Collections.Generic;
using IoreqSdk.Memory;
using IoreqSdk.Virtio;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>
/// A transport-neutral virtio driver for a simulated guest, doing what Linux's virtio core does with a device
/// (virtio 1.2 §3.1.1): reset and wait for the status to read 0, ACKNOWLEDGE, DRIVER, read the features, require
/// VERSION_1, accept the subset asked for, FEATURES_OK and check that it stuck, set up each queue in guest RAM (split,
/// or packed when RING_PACKED was negotiated), DRIVER_OK. Then: post buffers and kick as the ring's suppression says,
/// take interrupts and used buffers, read the configuration under the generation counter, reset.
/// </summary>
/// <remarks>Single-threaded, like the tests it serves; call it from one thread.</remarks>
public sealed class GuestVirtioDriver
{
    /// <summary>How many times a configuration read is retried while the generation keeps changing.</summary>
    public const int MaxConfigRetries = 64;

    private readonly IGuestMemory _memory;
    private readonly GuestRamAllocator _allocator;
    private readonly List<GuestVirtqueue> _queues = new();

    /// <summary>Creates the driver; nothing is sent to the device until <see cref="Initialize"/>.</summary>
    /// <param name="transport">How the device is reached.</param>
    /// <param name="memory">Guest RAM, where the rings go.</param>
    /// <param name="allocator">Where in it.</param>
    public GuestVirtioDriver(GuestVirtioTransport transport, IGuestMemory memory, GuestRamAllocator allocator)
    {
        Transport = transport ?? throw new ArgumentNullException(nameof(transport));
        _memory = memory ?? throw new ArgumentNullException(nameof(memory));
        _allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
    }

    /// <summary>The transport.</summary>
    public GuestVirtioTransport Transport { get; }

    /// <summary>The features the device offered at the last <see cref="Initialize"/>.</summary>
    public ulong DeviceFeatures { get; private set; }

    /// <summary>The negotiated features (what the driver accepted and the device kept FEATURES_OK for).</summary>
    public ulong Features { get; private set; }

    /// <summary>The queues set up by <see cref="Initialize"/>, by index.</summary>
    public IReadOnlyList<GuestVirtqueue> Queues => _queues;

    /// <summary>Interrupts handled so far that reported used buffers.</summary>
    public int UsedBufferInterrupts { get; private set; }

    /// <summary>Interrupts handled so far that reported a configuration change.</summary>
    public int ConfigChangeInterrupts { get; private set; }

    /// <summary>Takes <paramref name="size"/> bytes of zeroed guest RAM for buffers (from the driver's allocator).</summary>
    /// <param name="size">The size.</param>
    /// <param name="alignment">The alignment (a power of two).</param>
    /// <returns>The guest-physical address.</returns>
    public ulong Allocate(ulong size, ulong alignment = 16) => _allocator.Allocate(size, alignment);

    /// <summary>Writes 0 to the status and waits, bounded, for it to read 0 (virtio 1.2 §2.1.2); forgets the queues.</summary>
    /// <exception cref="InvalidOperationException">The status did not read 0 in time.</exception>
    public void Reset()
    {
        Transport.WriteStatus(0);
        if (!SimulatedPciGuest.WaitUntil(() => Transport.ReadStatus() == 0))
        {
            throw new InvalidOperationException("The device did not complete its reset (the status never read 0).");
        }

        _queues.Clear();
    }

    /// <summary>Brings the device up (§3.1.1) with <paramref name="queueCount"/> queues of up to <paramref name="queueSize"/> entries.</summary>
    /// <param name="features">The features to accept beyond VERSION_1 (those the device does not offer are left out).</param>
    /// <param name="queueCount">How many queues to set up (from 0).</param>
    /// <param name="queueSize">The largest size to give each (the device's maximum caps it; split queues round down to a power of two).</param>
    /// <exception cref="InvalidOperationException">The device lacks VERSION_1, refused FEATURES_OK, or a queue is missing or refused.</exception>
    public void Initialize(ulong features = 0, int queueCount = 1, ushort queueSize = 256)
    {
        Reset();
        Transport.WriteStatus(Status(VirtioDeviceStatus.Acknowledge));
        Transport.WriteStatus(Status(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver));
        DeviceFeatures = Transport.ReadDeviceFeatures();
        if ((DeviceFeatures & VirtioFeatures.Version1) == 0)
        {
            Fail("The device does not offer VIRTIO_F_VERSION_1 (a legacy device).");
        }

        Features = DeviceFeatures & (features | VirtioFeatures.Version1);
        Transport.WriteDriverFeatures(Features);
        const VirtioDeviceStatus Negotiated = VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk;
        Transport.WriteStatus(Status(Negotiated));
        if ((Transport.ReadStatus() & (byte)VirtioDeviceStatus.FeaturesOk) == 0)
        {
            Fail(FormattableString.Invariant($"The device refused FEATURES_OK for features 0x{Features:x}."));
        }

        for (int i = 0; i < queueCount; i++)
        {
            _queues.Add(SetUpQueue(i, queueSize));
        }

        Transport.WriteStatus(Status(Negotiated | VirtioDeviceStatus.DriverOk));
    }

    /// <summary>Posts a buffer on a queue and kicks the device if the ring's suppression asks for it.</summary>
    /// <param name="queue">The queue's index.</param>
    /// <param name="buffer">The elements (device-readable first).</param>
    /// <returns>The buffer's id.</returns>
    public ushort Submit(int queue, ReadOnlySpan<GuestBuffer> buffer)
    {
        ushort id = _queues[queue].Post(buffer);
        Kick(queue);
        return id;
    }

    /// <summary>Kicks a queue if what was posted since the last kick needs a notification (event index or NO_NOTIFY).</summary>
    /// <param name="queue">The queue's index.</param>
    /// <returns>Whether the device was notified.</returns>
    public bool Kick(int queue)
    {
        if (!_queues[queue].KickPrepare())
        {
            return false;
        }

        Transport.Notify(queue);
        return true;
    }

    /// <summary>Handles a pending interrupt, as the driver's handler does, and counts its causes.</summary>
    /// <returns>The causes (none when nothing was pending).</returns>
    public GuestVirtioInterrupts TakeInterrupts()
    {
        GuestVirtioInterrupts causes = Transport.TakeInterrupts();
        UsedBufferInterrupts += (causes & GuestVirtioInterrupts.UsedBuffers) != 0 ? 1 : 0;
        ConfigChangeInterrupts += (causes & GuestVirtioInterrupts.ConfigChange) != 0 ? 1 : 0;
        return causes;
    }

    /// <summary>Waits, bounded, for the device to interrupt, then handles it.</summary>
    /// <param name="timeout">How long at most (10 s unless given).</param>
    /// <returns>The causes, or none if no interrupt came in time.</returns>
    public GuestVirtioInterrupts WaitForInterrupt(TimeSpan? timeout = null) =>
        SimulatedPciGuest.WaitUntil(() => Transport.InterruptPending, timeout) ? TakeInterrupts() : GuestVirtioInterrupts.None;

    /// <summary>
    /// Waits, bounded, for the device to return a buffer on <paramref name="queue"/>, handling its interrupts meanwhile
    /// as the driver's handler would (so the transport's interrupt state keeps up), then takes it.
    /// </summary>
    /// <param name="queue">The queue's index.</param>
    /// <param name="id">The buffer's id.</param>
    /// <param name="length">The bytes the device wrote.</param>
    /// <param name="timeout">How long at most (10 s unless given).</param>
    /// <returns>Whether a buffer came back in time.</returns>
    public bool WaitForUsed(int queue, out ushort id, out uint length, TimeSpan? timeout = null)
    {
        ushort takenId = 0;
        uint takenLength = 0;
        bool used = SimulatedPciGuest.WaitUntil(
            () =>
            {
                if (Transport.InterruptPending)
                {
                    TakeInterrupts();
                }

                return TryTakeUsed(queue, out takenId, out takenLength);
            },
            timeout);
        id = takenId;
        length = takenLength;
        return used;
    }

    /// <summary>Takes the next used buffer of a queue, if the device returned one.</summary>
    /// <param name="queue">The queue's index.</param>
    /// <param name="id">The buffer's id.</param>
    /// <param name="length">The bytes the device wrote.</param>
    /// <returns>Whether one was there.</returns>
    public bool TryTakeUsed(int queue, out ushort id, out uint length) => _queues[queue].TryTakeUsed(out id, out length);

    /// <summary>
    /// Reads the device-specific configuration as Linux's <c>virtio_cread_bytes</c> does: the generation, the bytes
    /// (in accesses of up to 4 bytes), the generation again, and again from the start while it changed.
    /// </summary>
    /// <param name="offset">The offset in the configuration space.</param>
    /// <param name="destination">Where the bytes go; its length is the count.</param>
    /// <returns>How many reads it took (1 when nothing changed meanwhile).</returns>
    /// <exception cref="InvalidOperationException">The generation kept changing for <see cref="MaxConfigRetries"/> reads.</exception>
    public int ReadConfig(int offset, Span<byte> destination)
    {
        for (int attempt = 1; attempt <= MaxConfigRetries; attempt++)
        {
            uint before = Transport.ReadConfigGeneration();
            int done = 0;
            while (done < destination.Length)
            {
                int width = destination.Length - done >= 4 && ((offset + done) & 3) == 0 ? 4 : destination.Length - done >= 2 && ((offset + done) & 1) == 0 ? 2 : 1;
                uint value = Transport.ReadConfig(offset + done, width);
                for (int b = 0; b < width; b++)
                {
                    destination[done + b] = (byte)(value >> (8 * b));
                }

                done += width;
            }

            if (Transport.ReadConfigGeneration() == before)
            {
                return attempt;
            }
        }

        throw new InvalidOperationException("The configuration generation kept changing: no consistent read.");
    }

    private static byte Status(VirtioDeviceStatus status) => (byte)status;

    private GuestVirtqueue SetUpQueue(int index, ushort wanted)
    {
        ushort max = Transport.ReadQueueMaxSize(index);
        if (max == 0)
        {
            Fail($"The device has no queue {index}.");
        }

        bool packed = (Features & VirtioFeatures.RingPacked) != 0;
        int size = Math.Min(max, wanted);
        if (!packed)
        {
            // A split ring's size is a power of two: the largest that fits.
            int power = 1;
            while (power * 2 <= size)
            {
                power *= 2;
            }

            size = power;
        }

        // Areas at the alignments of virtio 1.2 §2.7 and §2.8: descriptors 16; split avail 2 and used 4, each with its
        // event field; packed event suppression structures 4.
        ulong descriptors = Allocate(16UL * (uint)size, 16);
        ulong driverArea = packed ? Allocate(4, 4) : Allocate(6UL + (2UL * (uint)size), 2);
        ulong deviceArea = packed ? Allocate(4, 4) : Allocate(6UL + (8UL * (uint)size), 4);
        Transport.ConfigureQueue(index, (ushort)size, descriptors, driverArea, deviceArea);
        Transport.EnableQueue(index);
        if (!Transport.IsQueueEnabled(index))
        {
            Fail($"The device refused queue {index}.");
        }

        return packed
            ? new GuestPackedVirtqueue(_memory, (ushort)size, descriptors, driverArea, deviceArea)
            : new GuestSplitVirtqueue(_memory, (ushort)size, descriptors, driverArea, deviceArea, (Features & VirtioFeatures.EventIndex) != 0);
    }

    private void Fail(string reason)
    {
        // The driver gives up on the device, as §3.1.1 says it does.
        Transport.WriteStatus((byte)(Transport.ReadStatus() | (byte)VirtioDeviceStatus.Failed));
        throw new InvalidOperationException(reason);
    }
}
