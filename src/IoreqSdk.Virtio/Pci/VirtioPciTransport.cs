using System;
using IoreqSdk.Devices;
using IoreqSdk.Memory;
using IoreqSdk.Pci;

namespace IoreqSdk.Virtio.Pci;

/// <summary>
/// The virtio-pci modern transport (virtio 1.2 §4.1): a PCI function that exposes one <see cref="VirtioDevice"/> —
/// vendor 0x1AF4, device 0x1040 + the virtio device type, revision 1, virtio's vendor capabilities, MSI-X with a
/// configuration vector and one vector per queue, and INTx with the ISR status register when MSI-X is disabled or the
/// platform hides it (Xen 4.17 on Arm injects no MSI: the host bridge takes MSI-X out of the list there).
/// </summary>
/// <remarks>
/// <para>
/// <b>Identification.</b> Subsystem vendor 0x1AF4 and subsystem id = the device id (0x1040 + type: non-transitional
/// devices have a subsystem id of 0x40 or more, §4.1.2.1). The class code follows the device type as QEMU's do:
/// network 0x020000, block and SCSI 0x010000, console 0x078000, GPU 0x038000, input 0x098000, file system 0x018000,
/// anything else 0xFF0000 (no defined class); a constructor argument overrides it.
/// </para>
/// <para>
/// <b>BAR 0</b>, 64-bit memory, not prefetchable (reading the ISR clears it, so reads have side effects), every
/// structure on a page of its own as QEMU lays them out:
/// <list type="table">
/// <item><term>0x0000</term><description>common configuration (0x38 bytes, <c>VIRTIO_PCI_CAP_COMMON_CFG</c>)</description></item>
/// <item><term>0x1000</term><description>ISR status (1 byte, <c>VIRTIO_PCI_CAP_ISR_CFG</c>)</description></item>
/// <item><term>0x2000</term><description>device-specific configuration (<see cref="VirtioDevice.ConfigSize"/> bytes,
/// <c>VIRTIO_PCI_CAP_DEVICE_CFG</c>; no capability when the device has none)</description></item>
/// <item><term>next page</term><description>notifications (<c>VIRTIO_PCI_CAP_NOTIFY_CFG</c>): notify_off_multiplier 4,
/// queue_notify_off = the queue's index, so queue <c>n</c>'s doorbell is at offset <c>4n</c></description></item>
/// <item><term>next page</term><description>the MSI-X table (queues + 1 vectors), then on the page after it the PBA</description></item>
/// </list>
/// A <c>VIRTIO_PCI_CAP_PCI_CFG</c> window reaches the same structures through configuration space.
/// </para>
/// <para>
/// <b>Doorbells do not hold the vCPU.</b> A notify write is answered at once; the queue is processed afterwards on
/// the loop, from one posted, coalesced pass (<c>DeferredQueueNotifications</c>, shared with virtio-mmio); a device
/// that stops at its budget continues in a later pass (<see cref="IVirtioQueueScheduler"/>). Everything else runs
/// inside the guest's access, on the server's event loop. The device reaches guest memory as bus-master DMA:
/// refused while the driver has bus mastering off.
/// </para>
/// </remarks>
public sealed partial class VirtioPciTransport : PciDevice, IVirtioTransport, IVirtioQueueScheduler
{
    /// <summary>VIRTIO_MSI_NO_VECTOR: no MSI-X vector is assigned (and the value read back for a vector the device refused).</summary>
    public const ushort NoVector = 0xFFFF;

    /// <summary>The virtio PCI vendor id.</summary>
    public const ushort VendorId = 0x1AF4;

    /// <summary>The first modern virtio PCI device id; the device id is this plus the virtio device type.</summary>
    public const ushort DeviceIdBase = 0x1040;

    internal const int BarIndex = 0;
    internal const uint NotifyOffMultiplier = 4;
    internal const uint CommonOffset = 0;
    internal const uint CommonLength = 0x38;
    internal const uint IsrOffset = 0x1000;
    internal const uint DeviceConfigOffset = 0x2000;
    private const uint Page = 0x1000;

    private readonly DeferredQueueNotifications _doorbells;
    private readonly DmaMemory _memory;
    private readonly ushort[] _queueVectors;
    private readonly uint _deviceConfigLength;
    private readonly uint _notifyOffset;
    private readonly uint _notifyLength;
    private byte _isr;
    private bool _busMaster;

    /// <summary>Creates the function for <paramref name="device"/> and attaches itself as the device's transport.</summary>
    /// <param name="device">The virtio device (no transport attached yet).</param>
    /// <param name="name">A name for logs.</param>
    /// <param name="classCode">The class code (0xBBSSPP) instead of the one chosen from the device type.</param>
    public VirtioPciTransport(VirtioDevice device, string name = "virtio-pci", uint? classCode = null)
        : base(name, IdentityFor(device, classCode))
    {
        Device = device;
        int queues = device.QueueCount;
        MsixVectors = Math.Min(queues + 1, 2048);
        _queueVectors = new ushort[queues];
        _doorbells = new DeferredQueueNotifications(device);
        _memory = new DmaMemory(this);
        _deviceConfigLength = (uint)device.ConfigSize;
        _notifyOffset = DeviceConfigOffset + PageRound(Math.Max(_deviceConfigLength, 1));
        _notifyLength = (uint)queues * NotifyOffMultiplier;
        uint table = _notifyOffset + PageRound(_notifyLength);
        uint pending = table + PageRound((uint)MsixVectors * 16);
        uint size = pending + PageRound((((uint)MsixVectors + 63) / 64) * 8);

        PciBar bar = AddMemoryBar(BarIndex, size, is64Bit: true);
        AddCapability(new VirtioPciStructureCapability(VirtioPciCapabilityType.CommonConfig, BarIndex, CommonOffset, CommonLength));
        AddCapability(new VirtioPciStructureCapability(VirtioPciCapabilityType.IsrConfig, BarIndex, IsrOffset, 1));
        if (_deviceConfigLength != 0)
        {
            AddCapability(new VirtioPciStructureCapability(VirtioPciCapabilityType.DeviceConfig, BarIndex, DeviceConfigOffset, _deviceConfigLength));
        }

        AddCapability(new VirtioPciStructureCapability(VirtioPciCapabilityType.NotifyConfig, BarIndex, _notifyOffset, _notifyLength, NotifyOffMultiplier));
        AddCapability(new VirtioPciConfigWindow(this));
        AddMsixCapability(MsixVectors, bar, table, pending);
        ResetTransport();
        device.Attach(this);
    }

    /// <summary>The virtio device the function exposes.</summary>
    public VirtioDevice Device { get; }

    /// <summary>The MSI-X vectors the function offers: one for configuration changes and one per queue (at most 2048).</summary>
    public int MsixVectors { get; }

    /// <summary>Doorbells the guest rang for a queue the device does not have (ignored).</summary>
    public long IgnoredNotifies => _doorbells.IgnoredNotifies;

    /// <summary>Posted passes that processed the queues whose doorbells rang (each covers every doorbell rung before it ran).</summary>
    public long DeferredNotifyPasses => _doorbells.PostedPasses;

    /// <summary>Passes run inside the guest's doorbell write because the loop refused the post (no doorbell is dropped).</summary>
    public long InlineNotifyPasses => _doorbells.InlinePasses;

    /// <inheritdoc/>
    IGuestMemory IVirtioTransport.Memory => _memory;

    /// <summary>Whether the driver can use MSI-X: the capability is in the list (the platform delivers messages).</summary>
    private bool MsixPresent => HasMessageInterrupts;

    /// <inheritdoc/>
    void IVirtioTransport.NotifyUsedBuffers(int queueIndex)
    {
        if ((uint)queueIndex >= (uint)_queueVectors.Length)
        {
            return;
        }

        Interrupt(isrBit: 1, _queueVectors[queueIndex]);
    }

    /// <inheritdoc/>
    void IVirtioTransport.NotifyConfigChange() => Interrupt(isrBit: 2, _configVector);

    /// <inheritdoc/>
    bool IVirtioQueueScheduler.TryScheduleQueue(int queueIndex) => _doorbells.TrySchedule(queueIndex, Context);

    /// <inheritdoc/>
    protected override void OnAttached()
    {
        // A device that runs its own I/O off the loop or takes input from another thread needs the server's context,
        // not only the guest memory the transport gives (IDeviceContextConsumer); before the guest can reach it.
        if (Device is IDeviceContextConsumer consumer)
        {
            consumer.AttachContext(Context);
        }
    }

    /// <inheritdoc/>
    protected override void OnConfigWritten(int register, int size)
    {
        if (BusMasterEnabled != _busMaster)
        {
            _busMaster = BusMasterEnabled;
            _memory.Invalidate();
            if (!_busMaster)
            {
                // Pins are refused from now on; what the device's workers still hold, the device stops.
                Device.NotifyDmaDisabled();
            }
        }
    }

    /// <inheritdoc/>
    protected override ulong ReadBar(PciBar bar, ulong offset, int size) =>
        offset < Page ? ReadCommon((uint)offset, size)
        : offset - IsrOffset < Page ? (offset == IsrOffset ? ReadIsr() : 0UL)
        : offset - DeviceConfigOffset < _deviceConfigLength ? ReadDeviceConfig((int)(offset - DeviceConfigOffset), size)
        : 0;

    /// <inheritdoc/>
    protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
    {
        if (offset < Page)
        {
            WriteCommon((uint)offset, size, value);
        }
        else if (offset - DeviceConfigOffset < _deviceConfigLength)
        {
            WriteDeviceConfig((int)(offset - DeviceConfigOffset), size, value);
        }
        else if (offset - _notifyOffset < PageRound(_notifyLength))
        {
            // The whole page: a doorbell past the last queue's is the guest's mistake, and counted.
            Doorbell((uint)(offset - _notifyOffset), size);
        }
    }

    /// <summary>A read the PCI_CFG window names: <paramref name="offset"/> in BAR <paramref name="bar"/>, inside one of the structures (§4.1.4.9.2), or nothing (0).</summary>
    internal ulong ReadStructure(int bar, uint offset, int length) =>
        InsideStructure(bar, offset, length) ? ReadBar(Bars[BarIndex]!, offset, length) : 0;

    /// <summary>A write the PCI_CFG window names; ignored unless it lies inside one of the structures.</summary>
    internal void WriteStructure(int bar, uint offset, int length, uint value)
    {
        if (InsideStructure(bar, offset, length))
        {
            WriteBar(Bars[BarIndex]!, offset, length, value);
        }
    }

    private static PciIdentity IdentityFor(VirtioDevice device, uint? classCode)
    {
        if (device is null)
        {
            throw new ArgumentNullException(nameof(device));
        }

        if (device.IsAttached)
        {
            ThrowHelper.ThrowInvalidOperation("The virtio device has a transport already.");
        }

        if (device.DeviceType > 0x3F)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(device), "Modern virtio-pci device ids are 0x1040 to 0x107F: device types 0 to 63.");
        }

        ushort id = (ushort)(DeviceIdBase + device.DeviceType);
        return new PciIdentity
        {
            VendorId = VendorId,
            DeviceId = id,
            RevisionId = 1,
            ClassCode = classCode ?? ClassCodeFor(device.DeviceType),
            SubsystemVendorId = VendorId,
            SubsystemId = id,
            InterruptPin = 1,
        };
    }

    private static uint ClassCodeFor(ushort deviceType) => deviceType switch
    {
        1 => 0x02_00_00,       // network controller, Ethernet
        2 or 8 => 0x01_00_00,  // mass storage, SCSI (QEMU's choice for virtio-blk and virtio-scsi)
        3 => 0x07_80_00,       // communication controller, other
        16 => 0x03_80_00,      // display controller, other
        18 => 0x09_80_00,      // input device, other
        26 => 0x01_80_00,      // mass storage, other
        _ => 0xFF_00_00,       // device does not fit any defined class
    };

    private static uint PageRound(uint length) => (length + Page - 1) & ~(Page - 1);

    private bool InsideStructure(int bar, uint offset, int length)
    {
        ulong end = (ulong)offset + (uint)length;
        return bar == BarIndex
            && ((offset >= CommonOffset && end <= CommonOffset + CommonLength)
                || (offset == IsrOffset && length == 1)
                || (offset >= DeviceConfigOffset && end <= DeviceConfigOffset + (ulong)_deviceConfigLength)
                || (offset >= _notifyOffset && end <= (ulong)_notifyOffset + _notifyLength));
    }

    /// <summary>Reading the ISR returns its bits and clears them, and deasserts INTx (§4.1.4.5).</summary>
    private byte ReadIsr()
    {
        byte isr = _isr;
        _isr = 0;
        SetIntx(false);
        return isr;
    }

    /// <summary>Sends the driver a notification: the ISR bit always, then the vector under MSI-X, or INTx.</summary>
    private void Interrupt(byte isrBit, ushort vector)
    {
        _isr |= isrBit;
        if (InterruptMode == PciInterruptMode.Msix)
        {
            // A notification with no vector assigned is not sent (§4.1.5.1.2.1 lets the driver choose none).
            if (vector != NoVector)
            {
                SignalInterrupt(vector);
            }

            return;
        }

        SetIntx(true);
    }

    /// <summary>A doorbell write: answered now, the queue processed after it (see <see cref="DeferredQueueNotifications"/>).</summary>
    private void Doorbell(uint offset, int size)
    {
        // The queue is named by where the driver wrote (its queue_notify_off times the multiplier), as QEMU does;
        // without VIRTIO_F_NOTIFICATION_DATA the 16-bit value is the same index and adds nothing.
        if (size < 2 || offset % NotifyOffMultiplier != 0)
        {
            return;
        }

        _doorbells.Request((int)(offset / NotifyOffMultiplier), Context);
    }

    private ulong ReadDeviceConfig(int offset, int size)
    {
        Span<byte> bytes = stackalloc byte[8];
        Device.ReadConfig(offset, bytes.Slice(0, size));
        ulong value = 0;
        for (int i = size - 1; i >= 0; i--)
        {
            value = (value << 8) | bytes[i];
        }

        return value;
    }

    private void WriteDeviceConfig(int offset, int size, ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        for (int i = 0; i < size; i++)
        {
            bytes[i] = (byte)(value >> (8 * i));
        }

        Device.WriteConfig(offset, bytes.Slice(0, size));
    }

    /// <summary>
    /// Guest memory as the device's bus-master DMA reaches it: refused (and counted) while bus mastering is off. It
    /// passes the server memory's host addresses through (split rings served in place) only while bus mastering is
    /// on, and its mapping generation also moves when the driver turns bus mastering off, so a ring kept in place is
    /// looked up again — and refused — from then on. Pins (a device's zero-copy I/O) are given on the same terms:
    /// none while bus mastering is off; the device is told when the driver turns it off (OnDmaDisabled), and stops
    /// the I/O its workers do in place.
    /// </summary>
    private sealed class DmaMemory : IDirectGuestMemory, IPinnableGuestMemory
    {
        private readonly VirtioPciTransport _transport;
        private long _innerGeneration;
        private long _generation;

        public DmaMemory(VirtioPciTransport transport) => _transport = transport;

        // On the loop only, as the server's memory (every caller is the device's queue processing or a guest access).
        public long MappingGeneration
        {
            get
            {
                long inner = _transport.Context.Memory is IDirectGuestMemory direct ? direct.MappingGeneration : 0;
                if (inner != _innerGeneration)
                {
                    _innerGeneration = inner;
                    _generation++;
                }

                return _generation;
            }
        }

        public bool TryRead(ulong address, Span<byte> destination) => _transport.TryDmaRead(address, destination);

        public bool TryWrite(ulong address, ReadOnlySpan<byte> source) => _transport.TryDmaWrite(address, source);

        public bool TryGetHostAddress(ulong address, int length, out nint hostAddress)
        {
            hostAddress = 0;
            return _transport.BusMasterEnabled
                && _transport.Context.Memory is IDirectGuestMemory direct
                && direct.TryGetHostAddress(address, length, out hostAddress);
        }

        public bool TryPin(ulong address, int length, out HostBuffer buffer, out GuestMemoryPin pin)
        {
            buffer = default;
            pin = default;
            return _transport.BusMasterEnabled
                && _transport.Context.Memory is IPinnableGuestMemory pinnable
                && pinnable.TryPin(address, length, out buffer, out pin);
        }

        /// <summary>Bus mastering changed: host addresses given out before are not to be used any more.</summary>
        public void Invalidate() => _generation++;
    }
}
