using IoreqSdk.Devices;

namespace IoreqSdk.Benchmarks;

/// <summary>A device with a few registers and no work in its handlers: the cost measured is the SDK's.</summary>
internal sealed class RegisterDevice : DeviceModel
{
    private readonly ulong[] _registers = new ulong[512];

    public RegisterDevice(ulong address, ulong size = 0x1000)
        : base("bench")
    {
        Region = AddMmioRegion(size, address);
    }

    public DeviceRegion Region { get; }

    // The C baseline's device does the same: index a register file by the offset, nothing else.
    public override ulong Read(DeviceRegion region, ulong offset, int size) => _registers[(int)(offset >> 3) & 511];

    public override void Write(DeviceRegion region, ulong offset, int size, ulong value) => _registers[(int)(offset >> 3) & 511] = value;
}
