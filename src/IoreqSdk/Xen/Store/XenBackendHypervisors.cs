using IoreqSdk.Hypervisor;
using IoreqSdk.Xenstore.Backend;

namespace IoreqSdk.Xen.Store;

/// <summary>
/// Real Xen for the backend service: every device gets Xen handles of its own (a <see cref="XenHypervisor"/> opened
/// for it and closed after its ioreq server is destroyed), so restricting one device's handles to its guest, or a
/// fault on one device's handles, never reaches another device.
/// </summary>
public sealed class XenBackendHypervisors : IBackendHypervisors
{
    /// <inheritdoc/>
    public IHypervisor Acquire(ushort frontendDomain) => XenHypervisor.Open();

    /// <inheritdoc/>
    public void Release(ushort frontendDomain, IHypervisor hypervisor) => hypervisor?.Dispose();
}
