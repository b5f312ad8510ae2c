using System;
using System.Buffers.Binary;
using IoreqSdk.Devices;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Virtio.Mmio;

/// <summary>The register block's reads and writes (virtio 1.2 §4.2.2, table 4.1).</summary>
public sealed partial class VirtioMmioTransport
{
    /// <inheritdoc/>
    public override ulong Read(DeviceRegion region, ulong offset, int size)
    {
        if (offset >= R.Config)
        {
            return ReadConfig((int)(offset - R.Config), size);
        }

        if (size != 4 || (offset & 3) != 0)
        {
            RefusedAccesses++;
            return uint.MaxValue;
        }

        return (int)offset switch
        {
            R.MagicValue => R.MagicValueExpected,
            R.Version => R.VersionModern,
            R.DeviceId => _device.DeviceType,
            R.VendorId => _vendorId,
            R.DeviceFeatures => _device.ReadDeviceFeatures(_deviceFeaturesSelect),
            R.QueueNumMax => SelectedQueue() is VirtioQueue queue ? queue.MaxSize : 0u,
            R.QueueReady => SelectedQueue() is VirtioQueue { IsEnabled: true } ? 1u : 0u,
            R.InterruptStatus => _interruptStatus,
            R.Status => (uint)_device.Status,

            // No shared memory regions: the specification's "no such region" is a length of -1 (Linux reads the base
            // only for a region that exists; it reads all-ones as well).
            R.ShmLenLow or R.ShmLenHigh or R.ShmBaseLow or R.ShmBaseHigh => uint.MaxValue,
            R.ConfigGeneration => _device.ConfigGeneration,

            // Write-only registers (the driver must not read them) and reserved offsets.
            _ => 0u,
        };
    }

    /// <inheritdoc/>
    public override void Write(DeviceRegion region, ulong offset, int size, ulong value)
    {
        if (offset >= R.Config)
        {
            WriteConfig((int)(offset - R.Config), size, value);
            return;
        }

        if (size != 4 || (offset & 3) != 0)
        {
            RefusedAccesses++;
            return;
        }

        uint word = (uint)value;
        switch ((int)offset)
        {
            case R.DeviceFeaturesSel:
                _deviceFeaturesSelect = word;
                break;
            case R.DriverFeatures:
                _device.WriteDriverFeatures(_driverFeaturesSelect, word);
                break;
            case R.DriverFeaturesSel:
                _driverFeaturesSelect = word;
                break;
            case R.QueueSel:
                _queueSelect = word;
                break;
            case R.QueueNum:
                // A size beyond 16 bits is no size: 0 makes enabling the queue fail, as any invalid size does.
                _device.SetQueueSize(SelectedIndex, word > ushort.MaxValue ? (ushort)0 : (ushort)word);
                break;
            case R.QueueReady:
                WriteQueueReady(word);
                break;
            case R.QueueNotify:
                // Answered now; the device processes the queue once the request is answered.
                _notifications.Request(word > int.MaxValue ? -1 : (int)word, Context);
                break;
            case R.InterruptAck:
                Acknowledge(word);
                break;
            case R.Status:
                WriteStatus(word);
                break;
            case R.QueueDescLow or R.QueueDescHigh:
                WriteArea(AreaKind.Descriptor, high: offset == R.QueueDescHigh, word);
                break;
            case R.QueueDriverLow or R.QueueDriverHigh:
                WriteArea(AreaKind.Driver, high: offset == R.QueueDriverHigh, word);
                break;
            case R.QueueDeviceLow or R.QueueDeviceHigh:
                WriteArea(AreaKind.Device, high: offset == R.QueueDeviceHigh, word);
                break;
            case R.ShmSel:
                _shmSelect = word;
                break;
            default:
                // Read-only registers and reserved offsets (QueueReset among them: VIRTIO_F_RING_RESET is not offered).
                break;
        }
    }

    private enum AreaKind
    {
        Descriptor,
        Driver,
        Device,
    }

    /// <summary>The selected queue's index, or -1 when the selector names no queue (the device ignores -1).</summary>
    private int SelectedIndex => _queueSelect < (uint)_device.QueueCount ? (int)_queueSelect : -1;

    private VirtioQueue? SelectedQueue() => SelectedIndex is int index and >= 0 ? _device.GetQueue(index) : null;

    private void WriteQueueReady(uint word)
    {
        if (word == 1)
        {
            _ = _device.EnableQueue(SelectedIndex);
        }
        else if (word == 0)
        {
            // QueueReady = 0 stops the queue (Linux's vm_del_vq); its pending notify, if any, finds it disabled.
            _device.DisableQueue(SelectedIndex);
        }
    }

    private void WriteStatus(uint word)
    {
        if (word == 0)
        {
            Reset();
        }
        else if ((word & 0xFF) != 0)
        {
            // Status is a byte in a 32-bit register: the bits above it mean nothing (and a write of them alone is
            // not the write of 0 that resets the device).
            _device.WriteStatus((byte)word);
        }
    }

    /// <summary>Writes one half of a queue's ring address, keeping the other half as the device holds it.</summary>
    private void WriteArea(AreaKind kind, bool high, uint word)
    {
        if (SelectedQueue() is not VirtioQueue queue)
        {
            return;
        }

        ulong current = kind switch
        {
            AreaKind.Descriptor => queue.DescriptorArea,
            AreaKind.Driver => queue.DriverArea,
            _ => queue.DeviceArea,
        };
        ulong address = high ? (current & 0xFFFF_FFFFUL) | ((ulong)word << 32) : (current & 0xFFFF_FFFF_0000_0000UL) | word;

        // The device takes the address only while the queue may be configured (after FEATURES_OK, not ready).
        switch (kind)
        {
            case AreaKind.Descriptor:
                _device.SetQueueDescriptorArea(queue.Index, address);
                break;
            case AreaKind.Driver:
                _device.SetQueueDriverArea(queue.Index, address);
                break;
            default:
                _device.SetQueueDeviceArea(queue.Index, address);
                break;
        }
    }

    private ulong ReadConfig(int offset, int size)
    {
        Span<byte> bytes = stackalloc byte[4];
        bytes = bytes.Slice(0, size);
        _device.ReadConfig(offset, bytes);
        return size switch
        {
            1 => bytes[0],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(bytes),
            _ => BinaryPrimitives.ReadUInt32LittleEndian(bytes),
        };
    }

    private void WriteConfig(int offset, int size, ulong value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)value);
        _device.WriteConfig(offset, bytes.Slice(0, size));
    }
}
