using System.Collections.Generic;
using IoreqSdk.Hypervisor;
using IoreqSdk.Xen;
using IoreqSdk.Xenstore.Backend;

namespace IoreqSdk.Simulation.Store;

/// <summary>
/// Simulated guests for the backend service, one <see cref="SimulatedHypervisor"/> a domain: <see cref="Acquire"/> hands
/// out the guest's (ESRCH for a domain with none, as Xen answers for a domain that does not exist); the caller owns them.
/// </summary>
public sealed class SimulatedBackendHypervisors : IBackendHypervisors
{
    private readonly object _gate = new();
    private readonly Dictionary<ushort, SimulatedHypervisor> _guests = [];
    private readonly Dictionary<ushort, int> _held = [];

    /// <summary>Makes <paramref name="guest"/> the hypervisor of its domain (<see cref="SimulatedHypervisor.Domain"/>).</summary>
    public void Add(SimulatedHypervisor guest)
    {
        lock (_gate)
        {
            _guests[guest.Domain] = guest;
        }
    }

    /// <summary>Forgets a domain's guest (a later <see cref="Acquire"/> fails with ESRCH).</summary>
    public void Remove(ushort domain)
    {
        lock (_gate)
        {
            _guests.Remove(domain);
        }
    }

    /// <summary>How many devices hold the domain's hypervisor now (0 once every device was torn down).</summary>
    public int Held(ushort domain)
    {
        lock (_gate)
        {
            return _held.TryGetValue(domain, out int held) ? held : 0;
        }
    }

    /// <inheritdoc/>
    public IHypervisor Acquire(ushort frontendDomain)
    {
        lock (_gate)
        {
            if (!_guests.TryGetValue(frontendDomain, out SimulatedHypervisor? guest))
            {
                throw XenErrors.Create("xendevicemodel_nr_vcpus", Errno.ESRCH, frontendDomain);
            }

            _held[frontendDomain] = Held(frontendDomain) + 1;
            return guest;
        }
    }

    /// <inheritdoc/>
    public void Release(ushort frontendDomain, IHypervisor hypervisor)
    {
        lock (_gate)
        {
            _held[frontendDomain] = Held(frontendDomain) - 1;
        }
    }
}
