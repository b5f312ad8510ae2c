using System.Threading;
using System.Threading.Tasks;

namespace Demu;

/// <summary>A run on real Xen, for the guest named by --domain.</summary>
internal static class XenRun
{
    public static Task<int> RunAsync(DemuSettings settings, CancellationToken cancellation)
    {
        settings.Error.WriteLine("demu: --domain needs the native Xen backend, which this build does not have yet.");
        return Task.FromResult(2);
    }
}
