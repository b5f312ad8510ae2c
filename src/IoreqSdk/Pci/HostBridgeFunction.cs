namespace IoreqSdk.Pci;

/// <summary>Function 00:00.0 of a bridge that owns its configuration space: a class 06/00 host bridge with nothing to decode.</summary>
internal sealed class HostBridgeFunction : PciDevice
{
    public HostBridgeFunction()
        : base("host-bridge", new PciIdentity { VendorId = 0x1b36, DeviceId = 0x0008, ClassCode = 0x060000 })
    {
    }

    protected override ulong ReadBar(PciBar bar, ulong offset, int size) => ulong.MaxValue;

    protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
    {
    }
}
