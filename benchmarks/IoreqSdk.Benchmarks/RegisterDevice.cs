using IoreqSdk.Devices;

namespace IoreqSdk.Benchmarks;

/// <summary>A device with a few registers and no work in its handlers: the cost measured is the SDK's.</summary>
internal sealed class RegisterDevice : DeviceModel
{
    private readonly ulong[] _registers = new ulong[512];

    /// <param name="address">Where the registers are.</param>
    /// <param name="size">How many bytes.</param>
    /// <param name="concurrent">Whether several loops may serve it at once (each register is one aligned word: a read
    /// sees a whole value, as C's does).</param>
    public RegisterDevice(ulong address, ulong size = 0x1000, bool concurrent = false)
        : base("bench")
    {
        Region = AddMmioRegion(size, address);
        if (concurrent)
        {
            ServeConcurrently(Region);
        }
    }

    public DeviceRegion Region { get; }

    // The C baseline's device does the same: index a register file by the offset, nothing else.
    public override ulong Read(DeviceRegion region, ulong offset, int size) => _registers[(int)(offset >> 3) & 511];

    public override void Write(DeviceRegion region, ulong offset, int size, ulong value) => _registers[(int)(offset >> 3) & 511] = value;
}
