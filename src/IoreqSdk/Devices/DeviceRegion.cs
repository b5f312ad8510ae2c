using System;

namespace IoreqSdk.Devices;

/// <summary>
/// A window of a device in MMIO or port space. Offsets passed to the device's handlers are relative to the region's
/// start, wherever the region is mapped.
/// </summary>
public sealed class DeviceRegion
{
    internal DeviceRegion(IDeviceModel device, int index, RegionKind kind, ulong size, AccessWidths widths, ulong? address)
    {
        if (size == 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A region has at least one byte.");
        }

        if ((widths & AccessWidths.All) == AccessWidths.None || (widths & ~AccessWidths.All) != AccessWidths.None)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(widths), "A region accepts at least one of the widths 1, 2, 4 and 8.");
        }

        if (address is ulong a && a + (size - 1) < a)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(address), "The region would wrap around the end of the address space.");
        }

        // Port space is 64 Ki ports (x86 IN/OUT take a 16-bit port): a region past 0xFFFF could never be reached.
        if (kind == RegionKind.Port && (size > 0x1_0000 || (address ?? 0) + size > 0x1_0000))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A port region lies within ports 0 to 0xFFFF.");
        }

        Device = device;
        Index = index;
        Kind = kind;
        Size = size;
        Widths = widths;
        InitialAddress = address;
    }

    /// <summary>The device that owns the region.</summary>
    public IDeviceModel Device { get; }

    /// <summary>The region's number within its device (0, 1, …), in declaration order.</summary>
    public int Index { get; }

    /// <summary>MMIO or ports.</summary>
    public RegionKind Kind { get; }

    /// <summary>The size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The widths the device's handlers accept for this region.</summary>
    public AccessWidths Widths { get; }

    /// <summary>The fixed address the device declared, mapped when its server starts; <see langword="null"/> when the
    /// device maps the region itself later (a PCI BAR, for instance).</summary>
    public ulong? InitialAddress { get; }

    /// <summary>Where the region is mapped now, or <see langword="null"/> when it is not.</summary>
    public ulong? Address { get; internal set; }

    /// <summary>The last address of the region at <paramref name="address"/> (inclusive).</summary>
    internal ulong EndAt(ulong address) => address + (Size - 1);

    /// <inheritdoc/>
    public override string ToString() =>
        FormattableString.Invariant($"{Device.Name}[{Index}] {Kind} {Size:#,0} bytes at {(Address is ulong a ? "0x" + a.ToString("x", System.Globalization.CultureInfo.InvariantCulture) : "(unmapped)")}");
}
