using System.Collections.Generic;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Hypervisor;
using IoreqSdk.Platforms;

namespace IoreqSdk.Server;

/// <summary>
/// The server's mapped regions: each region's address space, kept in step with the dispatcher's range tables and,
/// while an ioreq server exists, with its claims in the hypervisor. Maps, moves and unmaps without a moment in which
/// Xen routes an address the dispatcher has no entry for. Used under the server's rules: on the loop while it runs,
/// under the lifecycle lock otherwise.
/// </summary>
internal sealed class RegionMap
{
    private readonly IHypervisor _hypervisor;
    private readonly ushort _domain;
    private readonly bool _hasPortIo;
    private readonly IoDispatcher _dispatcher;
    private readonly Dictionary<DeviceRegion, RegionKind> _mapped = new();
    private bool _claiming;
    private ushort _server;

    public RegionMap(IHypervisor hypervisor, ushort domain, GuestPlatform platform, IoDispatcher dispatcher)
    {
        _hypervisor = hypervisor;
        _domain = domain;
        _hasPortIo = platform.HasPortIo;
        _dispatcher = dispatcher;
    }

    /// <summary>From now on every map and unmap is also claimed or released in the hypervisor, for this server.</summary>
    public void ClaimIn(ushort server)
    {
        _server = server;
        _claiming = true;
    }

    /// <summary>The ioreq server is gone: mapping only updates the dispatcher again (until the next <see cref="ClaimIn"/>).</summary>
    public void StopClaiming() => _claiming = false;

    /// <summary>
    /// Maps (or moves) a region into an address space. The space is normally the region's own kind; a host bridge's
    /// PIO aperture maps a port region into MMIO space, where the device still sees port-relative offsets.
    /// </summary>
    public void Map(DeviceRegion region, RegionKind space, ulong address)
    {
        if (space == RegionKind.Port && !_hasPortIo)
        {
            ThrowHelper.ThrowInvalidOperation($"{region}: this guest has no port I/O.");
        }

        ulong end = region.EndAt(address);
        if (end < address)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(address), "The region would wrap around the end of the address space.");
        }

        if (_mapped.ContainsKey(region))
        {
            Unmap(region);
        }

        // Dispatcher first, then Xen: Xen never routes an address the dispatcher has no entry for.
        _dispatcher.AddRange(space, address, end, region);
        if (_claiming)
        {
            try
            {
                _hypervisor.MapIoRange(_domain, _server, RangeType(space), address, end);
            }
            catch
            {
                _dispatcher.RemoveRange(region);
                throw;
            }
        }

        region.Address = address;
        _mapped.Add(region, space);
    }

    public void Unmap(DeviceRegion region)
    {
        if (!_mapped.TryGetValue(region, out RegionKind space) || region.Address is not ulong address)
        {
            return;
        }

        _mapped.Remove(region);

        // Xen first, then the dispatcher: the mirror of Map.
        if (_claiming)
        {
            _hypervisor.UnmapIoRange(_domain, _server, RangeType(space), address, region.EndAt(address));
        }

        _dispatcher.RemoveRange(region);
        region.Address = null;
    }

    /// <summary>Teardown: the ranges go with the server (destroying it deregisters them); the dispatcher forgets them now.</summary>
    public void ForgetAll()
    {
        foreach (DeviceRegion region in new List<DeviceRegion>(_mapped.Keys))
        {
            _dispatcher.RemoveRange(region);
            region.Address = null;
        }

        _mapped.Clear();
    }

    private static IoRangeType RangeType(RegionKind kind) => kind == RegionKind.Mmio ? IoRangeType.Memory : IoRangeType.Port;
}
