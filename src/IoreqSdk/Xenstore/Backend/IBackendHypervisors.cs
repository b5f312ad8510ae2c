using IoreqSdk.Hypervisor;

namespace IoreqSdk.Xenstore.Backend;

/// <summary>
/// Where the backend service gets the hypervisor access for a device's ioreq server. On real Xen each device gets handles
/// of its own (<see cref="IoreqSdk.Xen.Store.XenBackendHypervisors"/>), so restricting them to one guest never reaches
/// another device; the simulation hands out each simulated guest's <c>SimulatedHypervisor</c>.
/// </summary>
public interface IBackendHypervisors
{
    /// <summary>Access for serving <paramref name="frontendDomain"/>; called on the service's loop, once a device.</summary>
    /// <exception cref="HypervisorException">The hypervisor cannot be opened or does not know the domain.</exception>
    IHypervisor Acquire(ushort frontendDomain);

    /// <summary>Gives back what <see cref="Acquire"/> returned, after the device's ioreq server is destroyed.</summary>
    void Release(ushort frontendDomain, IHypervisor hypervisor);
}
