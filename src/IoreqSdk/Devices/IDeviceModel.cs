using System.Collections.Generic;

namespace IoreqSdk.Devices;

/// <summary>
/// A device the SDK serves requests for. Implement it through <see cref="DeviceModel"/>. The SDK calls a device
/// from one thread at a time (its server's event loop), so device code needs no locks — except for the regions a
/// device declares concurrent (<see cref="DeviceModel.ServeConcurrently"/>), whose handlers a server with several
/// loop threads calls from them at once.
/// </summary>
public interface IDeviceModel
{
    /// <summary>A name for logs and diagnostics.</summary>
    string Name { get; }

    /// <summary>The device's regions, indexed by <see cref="DeviceRegion.Index"/>.</summary>
    IReadOnlyList<DeviceRegion> Regions { get; }

    /// <summary>Called once when the device joins a server, before any request.</summary>
    /// <param name="context">What the device may use: interrupts, guest memory, region mapping, work posting.</param>
    void Attach(IDeviceContext context);

    /// <summary>Serves a read.</summary>
    /// <param name="region">The region accessed.</param>
    /// <param name="offset">The offset from the region's start.</param>
    /// <param name="size">A width the region declared.</param>
    /// <returns>The value in the low <paramref name="size"/> bytes (higher bytes are ignored).</returns>
    ulong Read(DeviceRegion region, ulong offset, int size);

    /// <summary>Serves a write.</summary>
    /// <param name="region">The region accessed.</param>
    /// <param name="offset">The offset from the region's start.</param>
    /// <param name="size">A width the region declared.</param>
    /// <param name="value">The value, masked to <paramref name="size"/> bytes.</param>
    void Write(DeviceRegion region, ulong offset, int size, ulong value);
}
