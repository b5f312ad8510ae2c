using System;
using System.Collections.Generic;

namespace IoreqSdk.Devices;

/// <summary>
/// The base class of a device: declare regions in the constructor, serve <see cref="Read"/> and <see cref="Write"/>
/// with region-relative offsets, and use <see cref="Context"/> for interrupts, DMA and remapping.
/// </summary>
/// <example>
/// <code>
/// sealed class Scratch : DeviceModel
/// {
///     private readonly DeviceRegion _registers;
///     private ulong _value;
///     public Scratch() : base("scratch") =&gt; _registers = AddMmioRegion(0x1000, address: 0xfeb00000, AccessWidths.DWord);
///     public override ulong Read(DeviceRegion region, ulong offset, int size) =&gt; offset == 0 ? _value : 0;
///     public override void Write(DeviceRegion region, ulong offset, int size, ulong value) { if (offset == 0) _value = value; }
/// }
/// </code>
/// </example>
public abstract class DeviceModel : IDeviceModel
{
    private readonly List<DeviceRegion> _regions = new();
    private IDeviceContext? _context;

    /// <summary>Creates the device.</summary>
    /// <param name="name">A name for logs and diagnostics.</param>
    protected DeviceModel(string name)
    {
        Name = name;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public IReadOnlyList<DeviceRegion> Regions => _regions;

    /// <summary>The device's context; available once the device has joined a server.</summary>
    protected IDeviceContext Context
    {
        get
        {
            if (_context is null)
            {
                ThrowHelper.ThrowInvalidOperation($"Device '{Name}' has not joined a server yet.");
            }

            return _context;
        }
    }

    /// <summary>Whether the device has joined a server.</summary>
    protected bool IsAttached => _context is not null;

    /// <inheritdoc/>
    public void Attach(IDeviceContext context)
    {
        if (_context is not null)
        {
            ThrowHelper.ThrowInvalidOperation($"Device '{Name}' already belongs to a server.");
        }

        _context = context;
        OnAttached();
    }

    /// <inheritdoc/>
    public abstract ulong Read(DeviceRegion region, ulong offset, int size);

    /// <inheritdoc/>
    public abstract void Write(DeviceRegion region, ulong offset, int size, ulong value);

    /// <summary>Declares an MMIO region.</summary>
    /// <param name="size">Its size in bytes.</param>
    /// <param name="address">A fixed guest-physical address to map it at when the server starts, or <see langword="null"/> to map it later.</param>
    /// <param name="widths">The widths <see cref="Read"/> and <see cref="Write"/> implement for it.</param>
    /// <param name="accepted">
    /// The widths a guest may use, a superset of <paramref name="widths"/>; <see cref="AccessWidths.None"/> (the
    /// default, and the safe choice) means <paramref name="widths"/> alone. Other widths are refused: reads return
    /// all-ones, writes are dropped, both are counted. Accepted widths the handlers do not implement are split or
    /// merged by the SDK (see <see cref="DeviceRegion.AcceptedWidths"/>) — only opt in where a read-modify-write of the
    /// wider register is harmless.
    /// </param>
    /// <returns>The region.</returns>
    protected DeviceRegion AddMmioRegion(ulong size, ulong? address = null, AccessWidths widths = AccessWidths.All, AccessWidths accepted = AccessWidths.None) =>
        AddRegion(RegionKind.Mmio, size, address, widths, accepted);

    /// <summary>Declares a port-I/O region.</summary>
    /// <param name="size">Its size in ports.</param>
    /// <param name="port">A fixed first port to map it at when the server starts, or <see langword="null"/> to map it later.</param>
    /// <param name="widths">The widths <see cref="Read"/> and <see cref="Write"/> implement for it (port I/O is at most 4 bytes).</param>
    /// <param name="accepted">The widths a guest may use; <see cref="AccessWidths.None"/> (the default) means
    /// <paramref name="widths"/> alone. See <see cref="AddMmioRegion"/>.</param>
    /// <returns>The region.</returns>
    protected DeviceRegion AddPortRegion(ulong size, ushort? port = null, AccessWidths widths = AccessWidths.Byte | AccessWidths.Word | AccessWidths.DWord, AccessWidths accepted = AccessWidths.None) =>
        AddRegion(RegionKind.Port, size, port, widths, accepted);

    /// <summary>
    /// Declares that <paramref name="region"/>'s handlers are thread-safe: on a server with more than one loop thread
    /// (<see cref="Server.IoreqServerOptions.LoopThreads"/>), single-element accesses to it are served on the loop thread
    /// of the vCPU that made them, so several vCPUs' accesses run at once — with each other, and with this device's
    /// other handlers, posted work and completions on the event loop. Everything else (the device's other regions,
    /// string and rep forms, PCI configuration, and a region's accesses while the guest's buffered writes wait) is
    /// still served on the event loop.
    /// </summary>
    /// <param name="region">One of this device's regions.</param>
    /// <remarks>
    /// On such a thread <see cref="Read"/> and <see cref="Write"/> for the region may use only the services that any
    /// thread may (<see cref="IDeviceContext.TryPost"/>, <see cref="IDeviceContext.TryRunOffLoop{TResult}"/>). Guest
    /// memory and region mapping belong to the event loop and throw there (the access is then contained as a device
    /// fault), and interrupt lines and PCI interrupts are driven from the event loop (they throw there too): post that
    /// work to it. A handler may also see an
    /// access that reached the region just before the event loop moved or unmapped it. A handler must never wait for
    /// the event loop (for work it posted, say): the vCPUs of its loop wait with it, and a stop that needs that loop to
    /// end would wait too.
    /// </remarks>
    protected void ServeConcurrently(DeviceRegion region)
    {
        if (region is null)
        {
            throw new ArgumentNullException(nameof(region));
        }

        if (!ReferenceEquals(region.Device, this))
        {
            ThrowHelper.ThrowArgument(nameof(region), $"{region} belongs to another device.");
        }

        if (_context is not null)
        {
            ThrowHelper.ThrowInvalidOperation("Regions are declared concurrent before the device joins a server.");
        }

        region.MarkConcurrent();
    }

    /// <summary>Called when the device has joined a server and <see cref="Context"/> is available.</summary>
    protected virtual void OnAttached()
    {
    }

    private DeviceRegion AddRegion(RegionKind kind, ulong size, ulong? address, AccessWidths widths, AccessWidths accepted)
    {
        if (_context is not null)
        {
            ThrowHelper.ThrowInvalidOperation("Regions are declared before the device joins a server.");
        }

        var region = new DeviceRegion(this, _regions.Count, kind, size, widths, address, accepted);
        _regions.Add(region);
        return region;
    }
}
