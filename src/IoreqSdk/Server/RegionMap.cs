using System;
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
    /// <exception cref="InvalidOperationException">A port space on a guest without port I/O, or an overlap.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The region would wrap around the end of the address space.</exception>
    /// <exception cref="HypervisorException">The hypervisor refused the claim.</exception>
    public void Map(DeviceRegion region, RegionKind space, ulong address) => Place(region, space, address, throwing: true);

    /// <summary>As <see cref="Map"/> for a mapping the guest asked for (a BAR it programmed): a mapping that cannot be
    /// made is a result, and the region is left unmapped (a region that is moved is unmapped from its old place first).</summary>
    public RegionMapResult TryMap(DeviceRegion region, RegionKind space, ulong address) => Place(region, space, address, throwing: false);

    private RegionMapResult Place(DeviceRegion region, RegionKind space, ulong address, bool throwing)
    {
        if (space == RegionKind.Port && !_hasPortIo)
        {
            if (throwing)
            {
                ThrowHelper.ThrowInvalidOperation($"{region}: this guest has no port I/O.");
            }

            return RegionMapResult.NoPortIo;
        }

        ulong end = region.EndAt(address);
        if (end < address)
        {
            if (throwing)
            {
                ThrowHelper.ThrowArgumentOutOfRange(nameof(address), "The region would wrap around the end of the address space.");
            }

            return RegionMapResult.WrapsAround;
        }

        if (_mapped.ContainsKey(region))
        {
            Unmap(region);
        }

        // Dispatcher first, then Xen: Xen never routes an address the dispatcher has no entry for.
        if (throwing)
        {
            _dispatcher.AddRange(space, address, end, region);
        }
        else if (!_dispatcher.TryAddRange(space, address, end, region))
        {
            return RegionMapResult.Overlaps;
        }

        if (_claiming)
        {
            try
            {
                _hypervisor.MapIoRange(_domain, _server, RangeType(space), address, end);
            }
            catch (HypervisorException) when (!throwing)
            {
                // The hypervisor port reports a refusal as an exception; to the guest it is one more conflict.
                _dispatcher.RemoveRange(region);
                return RegionMapResult.RefusedByHypervisor;
            }
            catch
            {
                _dispatcher.RemoveRange(region);
                throw;
            }
        }

        region.Address = address;
        _mapped.Add(region, space);
        return RegionMapResult.Mapped;
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
