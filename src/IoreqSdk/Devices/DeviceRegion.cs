using System;

namespace IoreqSdk.Devices;

/// <summary>
/// A window of a device in MMIO or port space. Offsets passed to the device's handlers are relative to the region's
/// start, wherever the region is mapped.
/// </summary>
public sealed class DeviceRegion
{
    internal DeviceRegion(IDeviceModel device, int index, RegionKind kind, ulong size, AccessWidths widths, ulong? address, AccessWidths accepted = AccessWidths.None)
    {
        if (size == 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A region has at least one byte.");
        }

        if ((widths & AccessWidths.All) == AccessWidths.None || (widths & ~AccessWidths.All) != AccessWidths.None)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(widths), "A region accepts at least one of the widths 1, 2, 4 and 8.");
        }

        if ((accepted & ~AccessWidths.All) != AccessWidths.None || (accepted != AccessWidths.None && (accepted & widths) != widths))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(accepted), "The accepted widths are 1, 2, 4 or 8 and include every width the handlers implement.");
        }

        // Port space is 64 Ki ports: a larger region, or one that would run past its end, could never be claimed.
        if (kind == RegionKind.Port && (size > 0x1_0000 || (address is ulong port && port + size > 0x1_0000)))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A port region lies within ports 0 to 0xFFFF.");
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

        // Nothing named: the safe default, the guest may use only what the handlers implement.
        AcceptedWidths = accepted == AccessWidths.None ? widths : accepted;
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

    /// <summary>The widths the device's handlers implement for this region: the only sizes they are ever called with.</summary>
    public AccessWidths Widths { get; }

    /// <summary>
    /// The widths a guest may use on this region: <see cref="Widths"/> unless the device opted in to more. An access
    /// of another width is refused (a read returns all-ones, a write is dropped, both are counted in
    /// <see cref="Server.IoreqServerStatistics.RefusedWidthAccesses"/>); an accepted width the handlers do not
    /// implement is adapted by the SDK — split into narrower accesses, or merged into an aligned wider one (a write
    /// then reads, merges and writes back the wider unit).
    /// </summary>
    /// <remarks>
    /// Adaptation is opt-in because a read-modify-write is not what the guest asked for: a 1-byte write to a 4-byte
    /// doorbell would ring it again with the bytes read back, and a 1-byte write of 0 to a write-1-to-clear status
    /// register would write back (and so clear) the bits read from its other bytes.
    /// </remarks>
    public AccessWidths AcceptedWidths { get; private set; }

    /// <summary>The fixed address the device declared, mapped when its server starts; <see langword="null"/> when the
    /// device maps the region itself later (a PCI BAR, for instance).</summary>
    public ulong? InitialAddress { get; }

    /// <summary>Where the region is mapped now, or <see langword="null"/> when it is not.</summary>
    public ulong? Address { get; internal set; }

    /// <summary>
    /// Whether the region's handlers may run on several threads at once: on a server with more than one loop thread
    /// (<see cref="Server.IoreqServerOptions.LoopThreads"/>), a single-element access to it is served on the loop
    /// thread of the vCPU that made it, concurrently with the other loops' requests and with the event loop's work.
    /// Declared by the device (<see cref="DeviceModel.ServeConcurrently"/>); every other region is served on the event
    /// loop, one call at a time.
    /// </summary>
    public bool IsConcurrent { get; private set; }

    /// <summary>Lets the guest also use <paramref name="widths"/> (adapted to <see cref="Widths"/>); before the region is served.</summary>
    internal void Accept(AccessWidths widths) => AcceptedWidths |= widths & AccessWidths.All;

    /// <summary>Lets the region be served on several loop threads at once; before the region is served.</summary>
    internal void MarkConcurrent() => IsConcurrent = true;

    /// <summary>The last address of the region at <paramref name="address"/> (inclusive).</summary>
    internal ulong EndAt(ulong address) => address + (Size - 1);

    /// <inheritdoc/>
    public override string ToString() =>
        FormattableString.Invariant($"{Device.Name}[{Index}] {Kind} {Size:#,0} bytes at {(Address is ulong a ? "0x" + a.ToString("x", System.Globalization.CultureInfo.InvariantCulture) : "(unmapped)")}");
}
