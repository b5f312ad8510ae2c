using System;
using IoreqSdk.Memory;

namespace IoreqSdk.Virtio;

/// <summary>
/// A virtio device, independent of its transport: the status state machine, feature negotiation, the device-specific
/// configuration space with its generation counter, and the virtqueues (virtio 1.2 §2, §3).
/// </summary>
/// <remarks>
/// <para>
/// <b>For device authors.</b> Subclass this: pass the device type id, the device-specific features you offer, each
/// queue's maximum size and the config-space size; fill <see cref="Config"/>; implement
/// <see cref="OnQueueNotified(VirtioQueue)"/> (pop chains with <see cref="VirtioQueue.TryPop(VirtioDescriptorChain)"/>, push
/// them back, then <see cref="VirtioQueue.SignalUsed"/>), and <see cref="OnReset"/> to drop every in-flight request.
/// </para>
/// <para>
/// <b>For transport authors</b> (virtio-mmio, virtio-pci). The transport owns its registers and the queue selector,
/// and forwards the driver's writes here:
/// <list type="table">
/// <listheader><term>driver writes</term><description>transport calls</description></listheader>
/// <item><term>DeviceFeaturesSel + read DeviceFeatures</term><description><see cref="ReadDeviceFeatures(uint)"/></description></item>
/// <item><term>DriverFeaturesSel + DriverFeatures</term><description><see cref="WriteDriverFeatures(uint, uint)"/> (read back: <see cref="ReadDriverFeatures(uint)"/>)</description></item>
/// <item><term>Status</term><description><see cref="WriteStatus(byte)"/> (0 resets; read back: <see cref="Status"/>)</description></item>
/// <item><term>QueueSel</term><description>nothing: the transport keeps it, and passes it as <c>queueIndex</c> below; queues are read back with <see cref="GetQueue(int)"/> (QueueNumMax is <see cref="VirtioQueue.MaxSize"/>; for a selector ≥ <see cref="QueueCount"/> the transport itself answers 0)</description></item>
/// <item><term>QueueSize (QueueNum)</term><description><see cref="SetQueueSize(int, ushort)"/></description></item>
/// <item><term>QueueDesc / QueueDriver / QueueDevice (low and high halves assembled by the transport)</term><description><see cref="SetQueueDescriptorArea(int, ulong)"/>, <see cref="SetQueueDriverArea(int, ulong)"/>, <see cref="SetQueueDeviceArea(int, ulong)"/></description></item>
/// <item><term>QueueEnable / QueueReady = 1</term><description><see cref="EnableQueue(int)"/>; returns whether the queue is now enabled (read back <see cref="VirtioQueue.IsEnabled"/>)</description></item>
/// <item><term>QueueReady = 0 (virtio-mmio)</term><description><see cref="DisableQueue(int)"/></description></item>
/// <item><term>QueueNotify</term><description><see cref="NotifyQueue(int)"/> (after the transport has completed the guest's write)</description></item>
/// <item><term>ConfigGeneration</term><description><see cref="ConfigGeneration"/></description></item>
/// <item><term>device-specific config reads and writes</term><description><see cref="ReadConfig(int, Span{byte})"/>, <see cref="WriteConfig(int, ReadOnlySpan{byte})"/></description></item>
/// </list>
/// The device asks for interrupts through <see cref="IVirtioTransport.NotifyUsedBuffers(int)"/> and
/// <see cref="IVirtioTransport.NotifyConfigChange"/>; a transport attaches with <see cref="Attach(IVirtioTransport)"/>
/// before the guest can reach it. Queue indices outside <c>0..QueueCount-1</c> (the guest chose them) are ignored.
/// </para>
/// <para>
/// Everything here is called on one thread (the server's event loop), as all device code is. Nothing the guest writes
/// throws: a write the specification does not allow is ignored, and a malformed queue sets
/// <see cref="VirtioDeviceStatus.DeviceNeedsReset"/>.
/// </para>
/// </remarks>
public abstract partial class VirtioDevice
{
    /// <summary>The largest queue size virtio allows (2^15).</summary>
    public const int MaxQueueSize = 32768;

    private readonly VirtioQueue[] _queues;
    private readonly byte[] _config;
    private IVirtioTransport? _transport;
    private ulong _driverFeatures;
    private VirtioDeviceStatus _status;
    private uint _configGeneration;

    /// <summary>Creates the device.</summary>
    /// <param name="deviceType">The virtio device id (1 network, 2 block, 3 console, 4 entropy, …).</param>
    /// <param name="offeredFeatures">
    /// The features offered: any device-type bits, plus any of <see cref="VirtioFeatures.Supported"/>.
    /// <see cref="VirtioFeatures.Version1"/> is always added.
    /// </param>
    /// <param name="queueMaxSizes">Each queue's maximum size (1 to 32768); their count is the number of queues.</param>
    /// <param name="configSize">The size of the device-specific configuration space in bytes.</param>
    protected VirtioDevice(ushort deviceType, ulong offeredFeatures, ReadOnlySpan<ushort> queueMaxSizes, int configSize)
    {
        if (deviceType == 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(deviceType), "Device id 0 is reserved (invalid device).");
        }

        ulong reserved = offeredFeatures & VirtioFeatures.ReservedRange & ~VirtioFeatures.Supported;
        if (reserved != 0)
        {
            ThrowHelper.ThrowArgument(
                nameof(offeredFeatures),
                (reserved & VirtioFeatures.AccessPlatform) != 0
                    ? "VIRTIO_F_ACCESS_PLATFORM is reserved for grant-based DMA, which the SDK does not implement yet."
                    : $"Feature bits 0x{reserved:X} are queue or negotiation features the SDK does not implement.");
        }

        if (queueMaxSizes.Length == 0)
        {
            ThrowHelper.ThrowArgument(nameof(queueMaxSizes), "A virtio device has at least one queue.");
        }

        if (configSize < 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(configSize), "The config space size cannot be negative.");
        }

        DeviceType = deviceType;
        OfferedFeatures = offeredFeatures | VirtioFeatures.Version1;
        _config = new byte[configSize];
        _queues = new VirtioQueue[queueMaxSizes.Length];
        for (int i = 0; i < _queues.Length; i++)
        {
            if (queueMaxSizes[i] == 0 || queueMaxSizes[i] > MaxQueueSize)
            {
                ThrowHelper.ThrowArgumentOutOfRange(nameof(queueMaxSizes), $"Queue {i}: a maximum size is 1 to {MaxQueueSize}.");
            }

            _queues[i] = new VirtioQueue(this, i, queueMaxSizes[i]);
        }
    }

    /// <summary>The virtio device id.</summary>
    public ushort DeviceType { get; }

    /// <summary>The features the device offers (always including <see cref="VirtioFeatures.Version1"/>).</summary>
    public ulong OfferedFeatures { get; }

    /// <summary>The features the driver has written so far; after <see cref="VirtioDeviceStatus.FeaturesOk"/>, the negotiated set.</summary>
    public ulong DriverFeatures => _driverFeatures;

    /// <summary>The device status.</summary>
    public VirtioDeviceStatus Status => _status;

    /// <summary>The config generation: changes whenever the device changes its config space.</summary>
    public uint ConfigGeneration => _configGeneration;

    /// <summary>The size of the device-specific configuration space.</summary>
    public int ConfigSize => _config.Length;

    /// <summary>The number of queues.</summary>
    public int QueueCount => _queues.Length;

    /// <summary>Whether a transport has attached.</summary>
    public bool IsAttached => _transport is not null;

    /// <summary>The guest's memory (available once a transport has attached).</summary>
    protected IGuestMemory Memory => Transport.Memory;

    /// <summary>The device-specific config space, for the device to fill before the driver reads it. Use <see cref="ChangeConfig(int, ReadOnlySpan{byte})"/> once the driver runs.</summary>
    protected Span<byte> Config => _config;

    internal IVirtioTransport Transport
    {
        get
        {
            IVirtioTransport? transport = _transport;
            if (transport is null)
            {
                ThrowHelper.ThrowInvalidOperation("No transport is attached to this virtio device.");
            }

            return transport;
        }
    }

    /// <summary>Connects the transport that exposes the device. Called once, before the guest can reach the device.</summary>
    /// <param name="transport">The transport.</param>
    public void Attach(IVirtioTransport transport)
    {
        if (transport is null)
        {
            ThrowHelper.ThrowArgument(nameof(transport), "A transport is required.");
        }

        if (_transport is not null)
        {
            ThrowHelper.ThrowInvalidOperation("A transport is already attached to this virtio device.");
        }

        _transport = transport;
    }

    /// <summary>Whether a feature (a mask of one or more bits) was negotiated: the driver accepted it and the device accepted FEATURES_OK.</summary>
    /// <param name="feature">The feature mask.</param>
    /// <returns>Whether every bit of <paramref name="feature"/> is negotiated.</returns>
    public bool IsNegotiated(ulong feature) =>
        (_status & VirtioDeviceStatus.FeaturesOk) != 0 && (_driverFeatures & feature) == feature;

    /// <summary>Returns a queue, for the transport's read-back registers and for the device's processing.</summary>
    /// <param name="index">The queue index (0 to <see cref="QueueCount"/> - 1).</param>
    /// <returns>The queue.</returns>
    public VirtioQueue GetQueue(int index)
    {
        if ((uint)index >= (uint)_queues.Length)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(index), "No such queue.");
        }

        return _queues[index];
    }

    /// <summary>The 32 feature bits the driver reads for a select value (0: bits 0–31, 1: bits 32–63, anything else: 0).</summary>
    /// <param name="select">DeviceFeaturesSel.</param>
    /// <returns>The feature word.</returns>
    public uint ReadDeviceFeatures(uint select) => Word(OfferedFeatures, select);

    /// <summary>The 32 driver-feature bits last written for a select value.</summary>
    /// <param name="select">DriverFeaturesSel.</param>
    /// <returns>The feature word.</returns>
    public uint ReadDriverFeatures(uint select) => Word(_driverFeatures, select);

    /// <summary>
    /// The driver writes 32 of the features it accepts. Taken only between DRIVER and FEATURES_OK (virtio 1.2 §3.1.1);
    /// other writes are ignored. Bits the device did not offer are kept, and make FEATURES_OK fail.
    /// </summary>
    /// <param name="select">DriverFeaturesSel (0 or 1; anything else is ignored).</param>
    /// <param name="value">The feature word.</param>
    public void WriteDriverFeatures(uint select, uint value)
    {
        const VirtioDeviceStatus Gate = VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk | VirtioDeviceStatus.Failed;
        if ((_status & Gate) != VirtioDeviceStatus.Driver || select > 1)
        {
            return;
        }

        int shift = (int)select * 32;
        _driverFeatures = (_driverFeatures & ~(0xFFFF_FFFFUL << shift)) | ((ulong)value << shift);
    }

    /// <summary>
    /// The driver writes the status register. 0 resets the device. Otherwise the driver may only add bits, in order
    /// (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK; FAILED at any time): a write that clears a bit is ignored, and
    /// the steps of a write are taken in that order up to the first one the specification does not allow yet.
    /// FEATURES_OK is refused unless the driver accepted VERSION_1 and only offered bits.
    /// </summary>
    /// <param name="value">The written byte.</param>
    public void WriteStatus(byte value)
    {
        if (value == 0)
        {
            Reset();
            return;
        }

        // DEVICE_NEEDS_RESET is the device's bit: whatever the driver writes there, the device's value stands.
        VirtioDeviceStatus requested = (VirtioDeviceStatus)value & ~VirtioDeviceStatus.DeviceNeedsReset;
        VirtioDeviceStatus current = _status & ~VirtioDeviceStatus.DeviceNeedsReset;
        if ((requested & current) != current)
        {
            return; // Clearing a bit other than by reset: the driver MUST NOT (§2.1.2).
        }

        VirtioDeviceStatus added = requested & ~current;
        if ((added & VirtioDeviceStatus.Failed) != 0)
        {
            _status |= VirtioDeviceStatus.Failed;
        }

        if ((_status & VirtioDeviceStatus.Failed) != 0)
        {
            return; // After FAILED only a reset moves the device on.
        }

        if ((added & VirtioDeviceStatus.Acknowledge) != 0)
        {
            _status |= VirtioDeviceStatus.Acknowledge;
        }

        if ((added & VirtioDeviceStatus.Driver) != 0)
        {
            if ((_status & VirtioDeviceStatus.Acknowledge) == 0)
            {
                return;
            }

            _status |= VirtioDeviceStatus.Driver;
        }

        if ((added & VirtioDeviceStatus.FeaturesOk) != 0)
        {
            if ((_status & VirtioDeviceStatus.Driver) == 0 || !FeaturesAcceptable(_driverFeatures))
            {
                return; // The driver re-reads the status, sees FEATURES_OK clear and gives up (§3.1.1 step 6).
            }

            _status |= VirtioDeviceStatus.FeaturesOk;
        }

        if ((added & VirtioDeviceStatus.DriverOk) != 0)
        {
            if ((_status & VirtioDeviceStatus.FeaturesOk) == 0)
            {
                return;
            }

            _status |= VirtioDeviceStatus.DriverOk;
            RefreshQueuesLive();
            OnDriverOk();
        }
    }

    /// <summary>Reads the device-specific config space; bytes past its end read as 0.</summary>
    /// <param name="offset">The offset into the config space.</param>
    /// <param name="destination">Where to copy to.</param>
    public void ReadConfig(int offset, Span<byte> destination)
    {
        destination.Clear();
        if (offset >= 0 && offset < _config.Length)
        {
            ReadOnlySpan<byte> available = _config.AsSpan(offset);
            available.Slice(0, Math.Min(available.Length, destination.Length)).CopyTo(destination);
        }
    }

    /// <summary>The driver writes the device-specific config space: passed to <see cref="OnConfigWrite(int, ReadOnlySpan{byte})"/> if it lies inside it, ignored otherwise.</summary>
    /// <param name="offset">The offset into the config space.</param>
    /// <param name="source">The written bytes.</param>
    public void WriteConfig(int offset, ReadOnlySpan<byte> source)
    {
        if (offset >= 0 && source.Length <= _config.Length && offset <= _config.Length - source.Length && !source.IsEmpty)
        {
            OnConfigWrite(offset, source);
        }
    }

    /// <summary>
    /// Sets DEVICE_NEEDS_RESET and, if the driver is running (DRIVER_OK), asks for a configuration-change notification
    /// (§2.1.2). The device stays stopped until the driver resets it.
    /// </summary>
    public void SetNeedsReset()
    {
        if ((_status & VirtioDeviceStatus.DeviceNeedsReset) != 0)
        {
            return;
        }

        _status |= VirtioDeviceStatus.DeviceNeedsReset;
        RefreshQueuesLive();
        if ((_status & VirtioDeviceStatus.DriverOk) != 0)
        {
            _transport?.NotifyConfigChange();
        }
    }

    /// <summary>
    /// Changes the config space at run time: copies the bytes, moves the generation counter on, and (after DRIVER_OK)
    /// asks for a configuration-change notification.
    /// </summary>
    /// <param name="offset">Where in the config space.</param>
    /// <param name="bytes">The new bytes.</param>
    protected void ChangeConfig(int offset, ReadOnlySpan<byte> bytes)
    {
        if (offset < 0 || bytes.Length > _config.Length || offset > _config.Length - bytes.Length)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(offset), "The change lies outside the config space.");
        }

        bytes.CopyTo(_config.AsSpan(offset));
        _configGeneration++;
        if ((_status & VirtioDeviceStatus.DriverOk) != 0)
        {
            _transport?.NotifyConfigChange();
        }
    }

    /// <summary>
    /// Asks to be notified about <paramref name="queue"/> again in a later turn of the event loop, once the requests
    /// waiting meanwhile are answered: how a device that stops at a budget per pass continues, without holding the
    /// loop (and the vCPUs) through a long queue. Needs a transport that implements <see cref="IVirtioQueueScheduler"/>.
    /// </summary>
    /// <param name="queue">One of the device's queues.</param>
    /// <returns>Whether the later call was arranged; if not, the buffers left wait for the driver's next notification.</returns>
    protected bool TryContinueLater(VirtioQueue queue) =>
        queue is not null && _transport is IVirtioQueueScheduler scheduler && scheduler.TryScheduleQueue(queue.Index);

    /// <summary>
    /// A pass over <paramref name="queue"/> stopped at the device's budget with buffers possibly left (a driver that
    /// keeps posting must not hold the loop): signals what was used and asks for a later pass
    /// (<see cref="TryContinueLater"/>). Refused, it re-enables the queue's notifications, so the driver's next kick
    /// brings the device back.
    /// </summary>
    /// <param name="queue">The queue the pass worked on.</param>
    /// <returns>Whether a later pass was arranged.</returns>
    protected bool YieldPass(VirtioQueue queue)
    {
        if (queue is null)
        {
            ThrowHelper.ThrowArgument(nameof(queue), "A queue is required.");
        }

        queue.SignalUsed();
        if (TryContinueLater(queue))
        {
            return true;
        }

        _ = queue.EnableNotifications();
        return false;
    }

    /// <summary>The driver notified <paramref name="queue"/>: pop what it made available, process or start processing it, push it back, signal.</summary>
    /// <param name="queue">The queue (enabled, not broken, DRIVER_OK set).</param>
    protected abstract void OnQueueNotified(VirtioQueue queue);

    /// <summary>The device was reset (status 0 written): forget in-flight requests; the queues are already disabled and their chains stale.</summary>
    protected virtual void OnReset()
    {
    }

    /// <summary>
    /// The driver disabled <paramref name="queue"/> (virtio-mmio's QueueReady = 0): its chains are stale and their buffers
    /// the driver's again. A device whose workers touch guest memory in place stops them here — no access may start
    /// after this returns, and one in flight should end first. The default does nothing.
    /// </summary>
    /// <param name="queue">The queue, already reset.</param>
    protected virtual void OnQueueDisabled(VirtioQueue queue)
    {
    }

    /// <summary>
    /// The transport stopped the device's DMA (virtio-pci: the driver cleared Bus Master Enable, as Linux does before a
    /// kexec): guest memory is refused from now on, and a device whose workers touch it in place stops them here — no
    /// access may start after this returns, and one in flight should end first. The default does nothing.
    /// </summary>
    protected virtual void OnDmaDisabled()
    {
    }

    /// <summary>The transport's call: DMA stopped (<see cref="OnDmaDisabled"/>).</summary>
    internal void NotifyDmaDisabled() => OnDmaDisabled();

    /// <summary>The driver set DRIVER_OK: the device is live.</summary>
    protected virtual void OnDriverOk()
    {
    }

    /// <summary>The driver wrote the config space (within bounds). The default ignores it (most fields are read-only); a device with writable fields stores them into <see cref="Config"/>.</summary>
    /// <param name="offset">The offset.</param>
    /// <param name="data">The written bytes.</param>
    protected virtual void OnConfigWrite(int offset, ReadOnlySpan<byte> data)
    {
    }

    private static uint Word(ulong features, uint select) => select switch
    {
        0 => (uint)features,
        1 => (uint)(features >> 32),
        _ => 0,
    };

    private bool FeaturesAcceptable(ulong features) =>
        (features & ~OfferedFeatures) == 0 && (features & VirtioFeatures.Version1) != 0;

    /// <summary>Whether the device's queues may run: DRIVER_OK set, DEVICE_NEEDS_RESET not.</summary>
    internal bool IsRunning =>
        (_status & (VirtioDeviceStatus.DriverOk | VirtioDeviceStatus.DeviceNeedsReset)) == VirtioDeviceStatus.DriverOk;

    /// <summary>After a change of <see cref="IsRunning"/>'s inputs: each queue recomputes whether it is live.</summary>
    private void RefreshQueuesLive()
    {
        foreach (VirtioQueue queue in _queues)
        {
            queue.RefreshLive();
        }
    }

    private void Reset()
    {
        // Each queue's reset recomputes its liveness, with the status already cleared.
        _status = VirtioDeviceStatus.None;
        _driverFeatures = 0;
        foreach (VirtioQueue queue in _queues)
        {
            queue.Reset();
        }

        OnReset();
    }
}
