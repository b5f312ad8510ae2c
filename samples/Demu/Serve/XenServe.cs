using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Xen;
using IoreqSdk.Xen.Store;

namespace Demu.Serve;

/// <summary><c>demu serve</c> on real Xen: the backend service over libxenstore, on the Generic Host (<see cref="ServeHost"/>), until a signal (or, with --once, the first closed device).</summary>
internal static class XenServe
{
    public static async Task<int> RunAsync(ServeSettings settings, CancellationToken cancellation)
    {
        if (!XenHypervisor.IsSupported)
        {
            settings.Error.WriteLine("demu serve: this is not a Xen host (no /dev/xen/privcmd, or Xen's libraries are missing); run in dom0 as root, or try demu serve --simulate.");
            return 2;
        }

        if (!XenStore.TryOpen(out XenStore? store, out string? reason))
        {
            settings.Error.WriteLine($"demu serve: {reason}");
            return 2;
        }

        using (store)
        using (ServeHost host = ServeHost.Create(settings, store, new XenBackendHypervisors()))
        {
            int started = await host.StartAsync(cancellation).ConfigureAwait(false);
            return started != 0 ? started : await host.WaitAsync().ConfigureAwait(false);
        }
    }
}
