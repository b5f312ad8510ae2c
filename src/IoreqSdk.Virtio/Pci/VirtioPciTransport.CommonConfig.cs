namespace IoreqSdk.Virtio.Pci;

/// <content>The common configuration structure (virtio 1.2 §4.1.4.3): each field at its offset and width.</content>
public sealed partial class VirtioPciTransport
{
    // struct virtio_pci_common_cfg.
    private const uint DeviceFeatureSelect = 0x00;   // le32 RW
    private const uint DeviceFeature = 0x04;         // le32 RO
    private const uint DriverFeatureSelect = 0x08;   // le32 RW
    private const uint DriverFeature = 0x0C;         // le32 RW
    private const uint ConfigMsixVector = 0x10;      // le16 RW
    private const uint NumQueues = 0x12;             // le16 RO
    private const uint DeviceStatus = 0x14;          // u8 RW
    private const uint ConfigGenerationField = 0x15; // u8 RO
    private const uint QueueSelect = 0x16;           // le16 RW
    private const uint QueueSize = 0x18;             // le16 RW
    private const uint QueueMsixVector = 0x1A;       // le16 RW
    private const uint QueueEnable = 0x1C;           // le16 RW
    private const uint QueueNotifyOff = 0x1E;        // le16 RO
    private const uint QueueDesc = 0x20;             // le64 RW
    private const uint QueueDriver = 0x28;           // le64 RW
    private const uint QueueDevice = 0x30;           // le64 RW

    private uint _deviceFeatureSelect;
    private uint _driverFeatureSelect;
    private ushort _queueSelect;
    private ushort _configVector;

    /// <summary>The selected queue, if queue_select names one the device has.</summary>
    private VirtioQueue? SelectedQueue => _queueSelect < Device.QueueCount ? Device.GetQueue(_queueSelect) : null;

    /// <summary>
    /// A read of the common configuration. A field is read at its own width — a 64-bit field also as either 32-bit
    /// half (§4.1.3.1) — and any other access, or one past the structure, reads 0.
    /// </summary>
    private ulong ReadCommon(uint offset, int size)
    {
        VirtioQueue? queue = SelectedQueue;
        switch (offset)
        {
            case DeviceFeatureSelect when size == 4:
                return _deviceFeatureSelect;
            case DeviceFeature when size == 4:
                return Device.ReadDeviceFeatures(_deviceFeatureSelect);
            case DriverFeatureSelect when size == 4:
                return _driverFeatureSelect;
            case DriverFeature when size == 4:
                return Device.ReadDriverFeatures(_driverFeatureSelect);
            case ConfigMsixVector when size == 2:
                return _configVector;
            case NumQueues when size == 2:
                return (ulong)Device.QueueCount;
            case DeviceStatus when size == 1:
                return (byte)Device.Status;
            case ConfigGenerationField when size == 1:
                return (byte)Device.ConfigGeneration;
            case QueueSelect when size == 2:
                return _queueSelect;
            case QueueSize when size == 2:
                // 0 for a queue the device does not have: "the queue is unavailable".
                return queue?.Size ?? 0;
            case QueueMsixVector when size == 2:
                return queue is null ? NoVector : _queueVectors[queue.Index];
            case QueueEnable when size == 2:
                return queue is { IsEnabled: true } ? 1UL : 0;
            case QueueNotifyOff when size == 2:
                return queue is null ? 0 : (ulong)queue.Index;
            case QueueDesc or QueueDriver or QueueDevice or QueueDesc + 4 or QueueDriver + 4 or QueueDevice + 4:
                return ReadQueueAddress(queue, offset, size);
            default:
                return 0;
        }
    }

    /// <summary>A write of the common configuration; writes of read-only fields, of the wrong width, or past the structure are ignored.</summary>
    private void WriteCommon(uint offset, int size, ulong value)
    {
        VirtioQueue? queue = SelectedQueue;
        switch (offset)
        {
            case DeviceFeatureSelect when size == 4:
                _deviceFeatureSelect = (uint)value;
                break;
            case DriverFeatureSelect when size == 4:
                _driverFeatureSelect = (uint)value;
                break;
            case DriverFeature when size == 4:
                Device.WriteDriverFeatures(_driverFeatureSelect, (uint)value);
                break;
            case ConfigMsixVector when size == 2:
                _configVector = AcceptVector((ushort)value);
                break;
            case DeviceStatus when size == 1:
                WriteStatus((byte)value);
                break;
            case QueueSelect when size == 2:
                // Any value is kept (the driver reads it back); one past the queues selects nothing.
                _queueSelect = (ushort)value;
                break;
            case QueueSize when size == 2 && queue is not null:
                Device.SetQueueSize(queue.Index, (ushort)value);
                break;
            case QueueMsixVector when size == 2 && queue is not null:
                _queueVectors[queue.Index] = AcceptVector((ushort)value);
                break;
            case QueueEnable when size == 2 && queue is not null:
                // 1 enables; the driver must not write 0 (§4.1.4.3.2), and queue_reset is not offered: ignored.
                if (value == 1)
                {
                    Device.EnableQueue(queue.Index);
                }

                break;
            case QueueDesc or QueueDriver or QueueDevice or QueueDesc + 4 or QueueDriver + 4 or QueueDevice + 4:
                WriteQueueAddress(queue, offset, size, value);
                break;
        }
    }

    /// <summary>
    /// A vector the driver assigns: kept if the function has MSI-X and the vector is in its table, otherwise
    /// VIRTIO_MSI_NO_VECTOR — which the driver reads back to learn the mapping failed (§4.1.5.1.2).
    /// </summary>
    private ushort AcceptVector(ushort vector) =>
        MsixPresent && vector < MsixVectors ? vector : NoVector;

    /// <summary>device_status: 0 resets the device and the transport (vectors, ISR, selectors, pending doorbells).</summary>
    private void WriteStatus(byte value)
    {
        Device.WriteStatus(value);
        if (value == 0)
        {
            ResetTransport();
        }
    }

    private void ResetTransport()
    {
        _deviceFeatureSelect = 0;
        _driverFeatureSelect = 0;
        _queueSelect = 0;
        _configVector = NoVector;
        for (int i = 0; i < _queueVectors.Length; i++)
        {
            _queueVectors[i] = NoVector;
        }

        _doorbells.Clear();
        _isr = 0;
        SetIntx(false);
    }

    private static ulong ReadQueueAddress(VirtioQueue? queue, uint offset, int size)
    {
        if (queue is null)
        {
            return 0;
        }

        uint field = offset & ~7u;
        ulong address = field switch
        {
            QueueDesc => queue.DescriptorArea,
            QueueDriver => queue.DriverArea,
            _ => queue.DeviceArea,
        };

        bool high = (offset & 4) != 0;
        return size switch
        {
            8 when !high => address,
            4 => high ? address >> 32 : (uint)address,
            _ => 0,
        };
    }

    /// <summary>A 64-bit queue address, written whole or as either half (Linux writes the low half, then the high).</summary>
    private void WriteQueueAddress(VirtioQueue? queue, uint offset, int size, ulong value)
    {
        if (queue is null)
        {
            return;
        }

        uint field = offset & ~7u;
        ulong address = ReadQueueAddress(queue, field, 8);
        bool high = (offset & 4) != 0;
        switch (size)
        {
            case 8 when !high:
                address = value;
                break;
            case 4 when high:
                address = (address & 0xFFFF_FFFF) | (value << 32);
                break;
            case 4:
                address = (address & 0xFFFF_FFFF_0000_0000) | (uint)value;
                break;
            default:
                return;
        }

        // The device takes them only between FEATURES_OK and the queue's enable (§3.1.1): otherwise ignored there.
        switch (field)
        {
            case QueueDesc:
                Device.SetQueueDescriptorArea(queue.Index, address);
                break;
            case QueueDriver:
                Device.SetQueueDriverArea(queue.Index, address);
                break;
            default:
                Device.SetQueueDeviceArea(queue.Index, address);
                break;
        }
    }
}
