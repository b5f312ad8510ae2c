using IoreqSdk.Pci;

namespace IoreqSdk.Virtio.Pci;

/// <summary>The cfg_type values of virtio's vendor capabilities (virtio 1.2 §4.1.4).</summary>
internal static class VirtioPciCapabilityType
{
    public const byte CommonConfig = 1;
    public const byte NotifyConfig = 2;
    public const byte IsrConfig = 3;
    public const byte DeviceConfig = 4;
    public const byte PciConfig = 5;
}

/// <summary>Field offsets of struct virtio_pci_cap and its extensions (virtio 1.2 §4.1.4).</summary>
internal static class VirtioPciCapabilityFields
{
    public const int CfgType = 3;
    public const int Bar = 4;
    public const int Id = 5;
    public const int Offset = 8;
    public const int Length = 12;
    public const int NotifyOffMultiplier = 16;
    public const int PciConfigData = 16;
}

/// <summary>
/// struct virtio_pci_cap (virtio 1.2 §4.1.4): where one of the device's structures lives — cfg_type, bar, id, the
/// offset and length in the BAR — and, for the notification structure, notify_off_multiplier after it. Read-only.
/// </summary>
internal sealed class VirtioPciStructureCapability : PciCapability
{
    private readonly byte _type;
    private readonly byte _bar;
    private readonly uint _offset;
    private readonly uint _length;
    private readonly uint _multiplier;

    public VirtioPciStructureCapability(byte type, int bar, uint offset, uint length, uint? notifyOffMultiplier = null)
        : base(PciConfigRegisters.CapabilityVendor, notifyOffMultiplier is null ? 16 : 20)
    {
        _type = type;
        _bar = (byte)bar;
        _offset = offset;
        _length = length;
        _multiplier = notifyOffMultiplier ?? 0;
    }

    protected override void OnAdded()
    {
        Write8(VirtioPciCapabilityFields.CfgType, _type);
        Write8(VirtioPciCapabilityFields.Bar, _bar);
        Write8(VirtioPciCapabilityFields.Id, 0);
        Write32(VirtioPciCapabilityFields.Offset, _offset);
        Write32(VirtioPciCapabilityFields.Length, _length);
        if (Length > VirtioPciCapabilityFields.NotifyOffMultiplier)
        {
            Write32(VirtioPciCapabilityFields.NotifyOffMultiplier, _multiplier);
        }
    }
}

/// <summary>
/// struct virtio_pci_cfg_cap (virtio 1.2 §4.1.4.9), the configuration-space window: the driver writes cap.bar,
/// cap.offset and cap.length, then reads or writes pci_cfg_data, and the device performs that access on the BAR. The
/// four fields are writable; the hooks forward the data accesses to the transport.
/// </summary>
internal sealed class VirtioPciConfigWindow : PciCapability
{
    private const int Data = VirtioPciCapabilityFields.PciConfigData;

    private readonly VirtioPciTransport _transport;

    public VirtioPciConfigWindow(VirtioPciTransport transport)
        : base(PciConfigRegisters.CapabilityVendor, 20) => _transport = transport;

    protected override void OnAdded()
    {
        Write8(VirtioPciCapabilityFields.CfgType, VirtioPciCapabilityType.PciConfig);
        SetWritable(VirtioPciCapabilityFields.Bar, 1, 0xFF);
        SetWritable(VirtioPciCapabilityFields.Offset, 4, uint.MaxValue);
        SetWritable(VirtioPciCapabilityFields.Length, 4, uint.MaxValue);
        SetWritable(Data, 4, uint.MaxValue);
    }

    protected override void OnRead(int at, int size, ref uint value)
    {
        // Naturally aligned accesses overlap pci_cfg_data only from inside it.
        if (at < Data || !TryWindow(out int bar, out uint offset, out int length))
        {
            return;
        }

        uint read = (uint)_transport.ReadStructure(bar, offset, length);
        for (int i = 0; i < length; i++)
        {
            Write8(Data + i, (byte)(read >> (8 * i)));
        }

        value = 0;
        for (int i = size - 1; i >= 0; i--)
        {
            value = (value << 8) | Read8(at + i);
        }
    }

    protected override void OnWritten(int at, int size)
    {
        if (at < Data || !TryWindow(out int bar, out uint offset, out int length))
        {
            return;
        }

        // "using the first cap.length bytes from pci_cfg_data" (§4.1.4.9.1).
        uint data = Read32(Data) & (uint.MaxValue >> (32 - (8 * length)));
        _transport.WriteStructure(bar, offset, length, data);
    }

    /// <summary>The access the window names, if it is one the driver may make: 1, 2 or 4 bytes, aligned (§4.1.4.9.2).</summary>
    private bool TryWindow(out int bar, out uint offset, out int length)
    {
        bar = Read8(VirtioPciCapabilityFields.Bar);
        offset = Read32(VirtioPciCapabilityFields.Offset);
        uint requested = Read32(VirtioPciCapabilityFields.Length);
        length = (int)(requested & 7);
        return requested is 1 or 2 or 4 && offset % requested == 0;
    }
}
