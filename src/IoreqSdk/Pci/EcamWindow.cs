using IoreqSdk.Devices;

namespace IoreqSdk.Pci;

/// <summary>A bridge's ECAM window: bus, device, function and register from the offset (1 MiB per bus, 4 KiB per function).</summary>
internal sealed class EcamWindow : DeviceModel
{
    private readonly PciHostBridge _bridge;

    public EcamWindow(PciHostBridge bridge, PciWindow window)
        : base("ecam")
    {
        _bridge = bridge;
        AddMmioRegion(window.Size, window.Base, AccessWidths.Byte | AccessWidths.Word | AccessWidths.DWord);
    }

    public override ulong Read(DeviceRegion region, ulong offset, int size)
    {
        PciDevice? function = Decode(offset, out int register);
        return function is null ? uint.MaxValue : function.ReadConfig(register, size);
    }

    public override void Write(DeviceRegion region, ulong offset, int size, ulong value) =>
        Decode(offset, out int register)?.WriteConfig(register, size, (uint)value);

    private PciDevice? Decode(ulong offset, out int register)
    {
        register = (int)(offset & 0xFFF);
        return _bridge.FunctionAt((int)(offset >> 20), (int)(offset >> 15) & 31, (int)(offset >> 12) & 7);
    }
}
