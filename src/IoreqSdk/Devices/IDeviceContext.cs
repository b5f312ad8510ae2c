using System;
using IoreqSdk.Memory;

namespace IoreqSdk.Devices;

/// <summary>
/// What a device can do to the guest: map its regions, reach guest RAM, schedule work. It never learns the guest's
/// architecture: interrupts reach it as <see cref="InterruptLine"/>s from its host bridge or its platform.
/// </summary>
public interface IDeviceContext
{
    /// <summary>Guest RAM, for DMA.</summary>
    IGuestMemory Memory { get; }

    /// <summary>
    /// Maps a region at a guest address, or moves it there: the SDK claims the new range from the hypervisor and
    /// routes it to the device, without a moment where the old and new ranges overlap or a claimed address has no
    /// handler.
    /// </summary>
    /// <param name="region">One of the device's regions.</param>
    /// <param name="address">The guest address (port number for port regions).</param>
    void MapRegion(DeviceRegion region, ulong address);

    /// <summary>Unmaps a region; accesses to its old range are no longer the device's.</summary>
    /// <param name="region">One of the device's regions.</param>
    void UnmapRegion(DeviceRegion region);

    /// <summary>
    /// Runs <paramref name="work"/> on the device's thread (the server's event loop) as soon as it can. Call it from
    /// other threads — an I/O completion, input arriving, a timer — so that device state is only touched there.
    /// </summary>
    /// <param name="work">The work.</param>
    void Post(Action work);
}
