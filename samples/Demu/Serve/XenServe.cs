using System;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.Backends;
using IoreqSdk.Xen;
using IoreqSdk.Xen.Store;
using IoreqSdk.Xenstore.Backend;
using Microsoft.Extensions.Logging;

namespace Demu.Serve;

/// <summary><c>demu serve</c> on real Xen: the backend service over libxenstore, until a signal (or, with --once, the first closed device).</summary>
internal static class XenServe
{
    /// <summary>How long the teardown of every device may take after a signal before demu gives up on it and exits.</summary>
    public static readonly TimeSpan TeardownBound = TimeSpan.FromSeconds(20);

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
        using (ILoggerFactory logging = ServeLogging.Create(settings))
        {
            var options = new XenstoreBackendOptions
            {
                BackendDomain = settings.BackendDomain,
                LoggerFactory = logging,
                RestrictHandlesToDomain = settings.Restrict,
            }.AddStandardDevices();
            using var service = new XenstoreBackendService(store, new XenBackendHypervisors(), options);
            return await ServeAsync(service, settings, cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>Runs <paramref name="service"/> until a signal, <paramref name="cancellation"/>, or (--once) the first closed device; then tears down, bounded.</summary>
    public static async Task<int> ServeAsync(XenstoreBackendService service, ServeSettings settings, CancellationToken cancellation)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        using IDisposable signals = Teardown.OnSignals(stop);
        if (settings.Once)
        {
            service.DeviceClosed += (_, e) =>
            {
                settings.Error.WriteLine($"demu serve: {e.Device}; --once: stopping");
                stop.Cancel();
            };
        }

        Task running = service.RunAsync(stop.Token);
        var stopped = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using (stop.Token.Register(() => stopped.TrySetResult(true)))
        {
            await Task.WhenAny(running, stopped.Task).ConfigureAwait(false);
        }

        if (!running.IsCompleted)
        {
            // The stop asked the service to tear every device down; a device whose loop does not finish is not waited for
            // for ever (its ioreq server id is in xenstore: the next backend destroys it).
            if (await Task.WhenAny(running, Task.Delay(TeardownBound, CancellationToken.None)).ConfigureAwait(false) != running)
            {
                settings.Error.WriteLine("demu serve: the teardown did not finish in time; exiting anyway");
                return 1;
            }
        }

        try
        {
            await running.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IoreqSdk.Hypervisor.HypervisorException)
        {
            settings.Error.WriteLine($"demu serve: {e.Message}");
            return 1;
        }

        // Stopped on purpose (a signal, --once) is success; the xenstore connection ending under the service is not.
        return stop.IsCancellationRequested ? 0 : 1;
    }
}
