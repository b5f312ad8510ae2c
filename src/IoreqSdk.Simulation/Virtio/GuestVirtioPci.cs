using System;
using System.Collections.Generic;
using System.Linq;
using IoreqSdk.Pci;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>
/// The virtio-pci modern transport as a guest's driver reaches it, doing what Linux's <c>virtio_pci_modern</c> does:
/// it checks the ids, walks the capability list for virtio's vendor capabilities (cfg_type, bar, offset, length),
/// finds the BAR addresses the simulated firmware assigned, works the common configuration, computes each queue's
/// doorbell from queue_notify_off and notify_off_multiplier, programs MSI-X vectors (and checks what the device
/// reads back) when the function offers MSI-X, and otherwise takes INTx and reads the ISR.
/// </summary>
public sealed class GuestVirtioPci : GuestVirtioTransport
{
    /// <summary>VIRTIO_MSI_NO_VECTOR.</summary>
    public const ushort NoVector = 0xFFFF;

    // The message each vector sends: an x86 LAPIC address and a data value per vector the test can tell apart.
    private const ulong MessageAddress = 0xFEE0_0000;
    private const uint MessageDataBase = 0x40;

    // struct virtio_pci_common_cfg (virtio 1.2 §4.1.4.3).
    private const ulong DeviceFeatureSelect = 0x00;
    private const ulong DeviceFeature = 0x04;
    private const ulong DriverFeatureSelect = 0x08;
    private const ulong DriverFeature = 0x0C;
    private const ulong ConfigMsixVector = 0x10;
    private const ulong DeviceStatus = 0x14;
    private const ulong ConfigGeneration = 0x15;
    private const ulong QueueSelect = 0x16;
    private const ulong QueueSize = 0x18;
    private const ulong QueueMsixVector = 0x1A;
    private const ulong QueueEnable = 0x1C;
    private const ulong QueueNotifyOff = 0x1E;
    private const ulong QueueDesc = 0x20;
    private const ulong QueueDriver = 0x28;
    private const ulong QueueDevice = 0x30;

    private readonly SimulatedPciGuest _pci;
    private readonly ushort _deviceId;
    private readonly int _msix;
    private readonly Dictionary<int, ushort> _notifyOffsets = new();
    private int _messagesScanned;
    private GuestVirtioInterrupts _messageCauses;
    private bool _configVectorAssigned;

    /// <summary>Probes the function <paramref name="pci"/> holds as a modern virtio-pci device.</summary>
    /// <param name="pci">The simulated guest with the function, enumerated by its firmware.</param>
    /// <param name="useMsix">Whether to use MSI-X when the function offers it (otherwise INTx and the ISR, as with <c>pci=nomsi</c>).</param>
    /// <exception cref="InvalidOperationException">The function is not a modern virtio-pci device, or lacks a capability the driver needs.</exception>
    public GuestVirtioPci(SimulatedPciGuest pci, bool useMsix = true)
    {
        _pci = pci ?? throw new ArgumentNullException(nameof(pci));
        uint ids = pci.ReadConfig(PciConfigRegisters.VendorId, 4);
        _deviceId = (ushort)(ids >> 16);
        if ((ushort)ids != 0x1AF4 || _deviceId < 0x1040 || _deviceId > 0x107F || pci.ReadConfig(PciConfigRegisters.RevisionId, 1) < 1)
        {
            throw new InvalidOperationException($"{pci.Address} ({ids & 0xFFFF:x4}:{ids >> 16:x4}) is not a modern virtio-pci device.");
        }

        Common = FindStructure(VirtioPciCapabilityType.CommonConfig) ?? throw Missing("common configuration");
        Notifications = FindStructure(VirtioPciCapabilityType.NotifyConfig) ?? throw Missing("notification");
        Isr = FindStructure(VirtioPciCapabilityType.IsrConfig) ?? throw Missing("ISR");
        DeviceConfig = FindStructure(VirtioPciCapabilityType.DeviceConfig);
        ConfigWindow = FindStructure(VirtioPciCapabilityType.PciConfig);
        NotifyOffMultiplier = pci.ReadConfig(Notifications.CapabilityOffset + 16, 4);

        _msix = useMsix ? pci.FindCapability(PciConfigRegisters.CapabilityMsix) : 0;
        if (_msix != 0)
        {
            EnableMsix();
        }
    }

    /// <summary>The common configuration structure as the capability list describes it.</summary>
    public VirtioPciStructure Common { get; }

    /// <summary>The notification structure.</summary>
    public VirtioPciStructure Notifications { get; }

    /// <summary>The ISR status structure.</summary>
    public VirtioPciStructure Isr { get; }

    /// <summary>The device-specific configuration structure, when the device has one.</summary>
    public VirtioPciStructure? DeviceConfig { get; }

    /// <summary>The PCI configuration access capability (<c>VIRTIO_PCI_CAP_PCI_CFG</c>), when present.</summary>
    public VirtioPciStructure? ConfigWindow { get; }

    /// <summary>notify_off_multiplier.</summary>
    public uint NotifyOffMultiplier { get; }

    /// <summary>Whether the driver uses MSI-X (vector 0 for configuration changes, vector n + 1 for queue n); otherwise INTx and the ISR.</summary>
    public bool UsesMsix => _msix != 0;

    /// <inheritdoc/>
    public override ushort DeviceType => (ushort)(_deviceId - 0x1040);

    /// <inheritdoc/>
    public override bool InterruptPending => UsesMsix ? ScanMessages() != GuestVirtioInterrupts.None : _pci.Intx?.IsAsserted == true;

    /// <inheritdoc/>
    public override byte ReadStatus() => (byte)ReadCommon(DeviceStatus, 1);

    /// <inheritdoc/>
    public override void WriteStatus(byte status)
    {
        if (status == 0)
        {
            // A reset returns every vector to NO_VECTOR: assign the configuration vector again before DRIVER_OK.
            _configVectorAssigned = false;
        }
        else if ((status & 4) != 0)
        {
            AssignConfigVector();
        }

        WriteCommon(DeviceStatus, 1, status);
    }

    /// <inheritdoc/>
    public override ulong ReadDeviceFeatures()
    {
        WriteCommon(DeviceFeatureSelect, 4, 0);
        ulong low = ReadCommon(DeviceFeature, 4);
        WriteCommon(DeviceFeatureSelect, 4, 1);
        return low | (ReadCommon(DeviceFeature, 4) << 32);
    }

    /// <inheritdoc/>
    public override void WriteDriverFeatures(ulong features)
    {
        WriteCommon(DriverFeatureSelect, 4, 0);
        WriteCommon(DriverFeature, 4, (uint)features);
        WriteCommon(DriverFeatureSelect, 4, 1);
        WriteCommon(DriverFeature, 4, features >> 32);
    }

    /// <inheritdoc/>
    public override uint ReadConfigGeneration() => (uint)ReadCommon(ConfigGeneration, 1);

    /// <inheritdoc/>
    public override uint ReadConfig(int offset, int size) =>
        DeviceConfig is VirtioPciStructure config ? (uint)_pci.ReadBar(config.Bar, config.Offset + (ulong)offset, size) : 0;

    /// <inheritdoc/>
    public override void WriteConfig(int offset, int size, uint value)
    {
        if (DeviceConfig is VirtioPciStructure config)
        {
            _pci.WriteBar(config.Bar, config.Offset + (ulong)offset, size, value);
        }
    }

    /// <inheritdoc/>
    public override ushort ReadQueueMaxSize(int queue)
    {
        Select(queue);
        return (ushort)ReadCommon(QueueSize, 2);
    }

    /// <inheritdoc/>
    public override void ConfigureQueue(int queue, ushort size, ulong descriptorArea, ulong driverArea, ulong deviceArea)
    {
        AssignConfigVector();
        Select(queue);
        WriteCommon(QueueSize, 2, size);
        WriteAddress(QueueDesc, descriptorArea);
        WriteAddress(QueueDriver, driverArea);
        WriteAddress(QueueDevice, deviceArea);
        _notifyOffsets[queue] = (ushort)ReadCommon(QueueNotifyOff, 2);
        if (UsesMsix)
        {
            ushort vector = (ushort)(queue + 1);
            WriteCommon(QueueMsixVector, 2, vector);
            ushort readBack = (ushort)ReadCommon(QueueMsixVector, 2);
            if (readBack != vector)
            {
                throw new InvalidOperationException($"The device refused MSI-X vector {vector} for queue {queue} (read back 0x{readBack:x4}).");
            }
        }
    }

    /// <inheritdoc/>
    public override void EnableQueue(int queue)
    {
        Select(queue);
        WriteCommon(QueueEnable, 2, 1);
    }

    /// <inheritdoc/>
    public override bool IsQueueEnabled(int queue)
    {
        Select(queue);
        return ReadCommon(QueueEnable, 2) == 1;
    }

    /// <inheritdoc/>
    public override void Notify(int queue) =>
        _pci.WriteBar(Notifications.Bar, NotifyAddress(queue), 2, (ushort)queue);

    /// <summary>Queue <paramref name="queue"/>'s doorbell: the notification structure's offset plus queue_notify_off times the multiplier (§4.1.4.4).</summary>
    /// <param name="queue">A queue configured with <see cref="ConfigureQueue"/> (for any other, queue_notify_off 0 is assumed).</param>
    /// <returns>The offset in the notification structure's BAR.</returns>
    public ulong NotifyAddress(int queue) =>
        Notifications.Offset + ((ulong)(_notifyOffsets.TryGetValue(queue, out ushort off) ? off : (ushort)0) * NotifyOffMultiplier);

    /// <inheritdoc/>
    public override GuestVirtioInterrupts TakeInterrupts()
    {
        if (!UsesMsix)
        {
            // Reading the ISR clears it and deasserts the line.
            return (GuestVirtioInterrupts)(_pci.ReadBar(Isr.Bar, Isr.Offset, 1) & 3);
        }

        GuestVirtioInterrupts causes = ScanMessages();
        _messageCauses = GuestVirtioInterrupts.None;
        return causes;
    }

    /// <summary>Reads the common configuration.</summary>
    /// <param name="offset">The field's offset.</param>
    /// <param name="size">Its width.</param>
    /// <returns>The value.</returns>
    public ulong ReadCommon(ulong offset, int size) => _pci.ReadBar(Common.Bar, Common.Offset + offset, size);

    /// <summary>Writes the common configuration.</summary>
    /// <param name="offset">The field's offset.</param>
    /// <param name="size">Its width.</param>
    /// <param name="value">The value.</param>
    public void WriteCommon(ulong offset, int size, ulong value) => _pci.WriteBar(Common.Bar, Common.Offset + offset, size, value);

    private static InvalidOperationException Missing(string what) => new($"The device has no virtio {what} capability.");

    private void Select(int queue) => WriteCommon(QueueSelect, 2, (ushort)queue);

    /// <summary>A 64-bit field as Linux writes it: the low half, then the high half.</summary>
    private void WriteAddress(ulong field, ulong value)
    {
        WriteCommon(field, 4, (uint)value);
        WriteCommon(field + 4, 4, value >> 32);
    }

    /// <summary>The causes the messages received since the last <see cref="TakeInterrupts"/> carry: vector 0 a configuration change, any other a queue's used buffers.</summary>
    private GuestVirtioInterrupts ScanMessages()
    {
        // The record only grows: look at what arrived since the last scan (other devices' messages are skipped).
        if (_pci.Messages.Count != _messagesScanned)
        {
            (ulong Address, uint Data)[] all = _pci.Messages.ToArray();
            for (int i = _messagesScanned; i < all.Length; i++)
            {
                (ulong address, uint data) = all[i];
                if (address == MessageAddress && data >= MessageDataBase && data < MessageDataBase + 2048)
                {
                    _messageCauses |= data == MessageDataBase ? GuestVirtioInterrupts.ConfigChange : GuestVirtioInterrupts.UsedBuffers;
                }
            }

            _messagesScanned = all.Length;
        }

        return _messageCauses;
    }

    private void AssignConfigVector()
    {
        if (!UsesMsix || _configVectorAssigned)
        {
            return;
        }

        WriteCommon(ConfigMsixVector, 2, 0);
        ushort readBack = (ushort)ReadCommon(ConfigMsixVector, 2);
        if (readBack != 0)
        {
            throw new InvalidOperationException($"The device refused MSI-X vector 0 for configuration changes (read back 0x{readBack:x4}).");
        }

        _configVectorAssigned = true;
    }

    /// <summary>Programs every table entry (address, data, unmasked) and enables MSI-X, as the PCI core does for the driver.</summary>
    private void EnableMsix()
    {
        int vectors = (int)(_pci.ReadConfig(_msix + 2, 2) & 0x7FF) + 1;
        uint table = _pci.ReadConfig(_msix + 4, 4);
        int bar = (int)(table & 7);
        ulong at = table & ~7u;
        for (int v = 0; v < vectors; v++)
        {
            ulong entry = at + ((ulong)v * 16);
            _pci.WriteBar(bar, entry, 4, (uint)MessageAddress);
            _pci.WriteBar(bar, entry + 4, 4, MessageAddress >> 32);
            _pci.WriteBar(bar, entry + 8, 4, MessageDataBase + (uint)v);
            _pci.WriteBar(bar, entry + 12, 4, 0);
        }

        _pci.WriteConfig(_msix + 2, 2, 0x8000);
    }

    private VirtioPciStructure? FindStructure(byte type)
    {
        // Linux takes the first capability of each type it can use; so does this.
        int at = (int)_pci.ReadConfig(PciConfigRegisters.CapabilitiesPointer, 1) & 0xFC;
        for (int hops = 0; at != 0 && hops < 48; hops++)
        {
            if (_pci.ReadConfig(at, 1) == PciConfigRegisters.CapabilityVendor && _pci.ReadConfig(at + 3, 1) == type)
            {
                int bar = (int)_pci.ReadConfig(at + 4, 1);
                uint offset = _pci.ReadConfig(at + 8, 4);
                uint length = _pci.ReadConfig(at + 12, 4);
                if (type == VirtioPciCapabilityType.PciConfig || (bar <= 5 && _pci.Function.Bars.Any(b => b.Index == bar)))
                {
                    return new VirtioPciStructure(at, bar, offset, length);
                }
            }

            at = (int)_pci.ReadConfig(at + 1, 1) & 0xFC;
        }

        return null;
    }
}

/// <summary>One of virtio-pci's structures as its vendor capability describes it (struct virtio_pci_cap).</summary>
/// <param name="CapabilityOffset">Where the capability sits in configuration space.</param>
/// <param name="Bar">The BAR the structure lives in.</param>
/// <param name="Offset">Its offset in the BAR.</param>
/// <param name="Length">Its length.</param>
public sealed record VirtioPciStructure(int CapabilityOffset, int Bar, uint Offset, uint Length);

/// <summary>The cfg_type values of virtio's vendor capabilities (virtio 1.2 §4.1.4).</summary>
public static class VirtioPciCapabilityType
{
    /// <summary>VIRTIO_PCI_CAP_COMMON_CFG.</summary>
    public const byte CommonConfig = 1;

    /// <summary>VIRTIO_PCI_CAP_NOTIFY_CFG.</summary>
    public const byte NotifyConfig = 2;

    /// <summary>VIRTIO_PCI_CAP_ISR_CFG.</summary>
    public const byte IsrConfig = 3;

    /// <summary>VIRTIO_PCI_CAP_DEVICE_CFG.</summary>
    public const byte DeviceConfig = 4;

    /// <summary>VIRTIO_PCI_CAP_PCI_CFG.</summary>
    public const byte PciConfig = 5;
}
