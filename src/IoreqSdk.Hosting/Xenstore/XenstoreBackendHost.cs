using System;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;
using IoreqSdk.Xen.Store;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace IoreqSdk.Hosting.Xenstore;

/// <summary>
/// The hosted service that runs the <see cref="XenstoreBackendService"/>
/// <see cref="XenstoreBackendServiceCollectionExtensions.AddXenstoreBackend"/> registered: a backend daemon on the
/// Generic Host. Its start returns once the service watches xenstore — so the host reports started (and, under
/// systemd, READY=1) only when a device the toolstack writes from then on is seen. Stopping the host tears every device
/// down within <see cref="XenstoreBackendHostOptions.StopTimeout"/> and the host's shutdown timeout; a device whose
/// event loop does not return in time has its ioreq server destroyed directly, so no guest is left waiting on ranges a
/// dead process still claims. When the service ends by itself (its xenstore connection closed) the application stops.
/// </summary>
/// <remarks>
/// A plain <see cref="IHostedService"/>, not a <c>BackgroundService</c>: the host raises ApplicationStarted — on which
/// systemd's lifetime sends READY=1 — once every hosted service's StartAsync has returned, and a BackgroundService's
/// StartAsync returns before its ExecuteAsync has done anything (on .NET 10 it runs wholly on the thread pool), which
/// would report readiness before the watches exist.
/// </remarks>
public sealed partial class XenstoreBackendHost : IHostedService, IDisposable
{
    private readonly XenstoreBackendBuilder _builder;
    private readonly XenstoreBackendHostOptions _options;
    private readonly IServiceProvider _services;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private XenStore? _ownedStore;
    private IBackendHypervisors? _hypervisors;
    private Task? _running;
    private Task _watch = Task.CompletedTask;
    private bool _disposed;

    /// <summary>Created by dependency injection.</summary>
    /// <param name="builder">What to serve.</param>
    /// <param name="options">How.</param>
    /// <param name="services">The application's services, for the builder's callbacks.</param>
    /// <param name="lifetime">The application, stopped when the service ends by itself.</param>
    /// <param name="loggerFactory">The host's logging, for the service's, every device's and this service's logs.</param>
    public XenstoreBackendHost(XenstoreBackendBuilder builder, IOptions<XenstoreBackendHostOptions> options, IServiceProvider services, IHostApplicationLifetime lifetime, ILoggerFactory loggerFactory)
    {
        _builder = builder ?? throw new ArgumentNullException(nameof(builder));
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Value;
        _services = services ?? throw new ArgumentNullException(nameof(services));
        _lifetime = lifetime ?? throw new ArgumentNullException(nameof(lifetime));
        _loggerFactory = loggerFactory ?? throw new ArgumentNullException(nameof(loggerFactory));
        _logger = loggerFactory.CreateLogger<XenstoreBackendHost>();
    }

    /// <summary>The service, once the host started it.</summary>
    public XenstoreBackendService? Service { get; private set; }

    /// <summary>Whether the service watches xenstore (set when the start returns).</summary>
    public bool Watching { get; private set; }

    /// <summary>Whether the application was stopped because the service ended by itself (its xenstore connection closed, or it failed: <see cref="Failure"/>).</summary>
    public bool StoppedByItself { get; private set; }

    /// <summary>What the service failed with, if it did; <see langword="null"/> otherwise.</summary>
    public Exception? Failure { get; private set; }

    /// <summary>
    /// Whether the last stop gave up waiting for the teardown (a device call did not return in time) and destroyed the
    /// ioreq servers still served directly; the stuck loops are then left to the process's exit.
    /// </summary>
    public bool TeardownAbandoned { get; private set; }

    /// <summary>Brings the service up: the store and hypervisor access, the service created, its watches placed.</summary>
    /// <param name="cancellationToken">Not used: placing the watches is three xenstore requests.</param>
    /// <returns>A task that completes once the service watches xenstore.</returns>
    /// <exception cref="InvalidOperationException">The options are invalid, or xenstore cannot be opened (the message says why).</exception>
    /// <exception cref="XenStoreException">xenstore refused a watch.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (Service is not null)
        {
            throw new InvalidOperationException("The xenstore backend host was started already.");
        }

        if (_options.Problem() is string problem)
        {
            throw new InvalidOperationException(problem);
        }

        IXenStore store = _builder.StoreFactory?.Invoke(_services) ?? OpenStore();
        IBackendHypervisors hypervisors = _builder.HypervisorsFactory?.Invoke(_services) ?? new XenBackendHypervisors();
        _hypervisors = hypervisors;
        var options = new XenstoreBackendOptions
        {
            BackendDomain = _options.BackendDomain,
            RestrictHandlesToDomain = _options.RestrictHandlesToDomain,
            LoopThreads = _options.LoopThreads,
            LoggerFactory = _loggerFactory,
        };
        foreach (Action<IServiceProvider, XenstoreBackendOptions> configure in _builder.Configure)
        {
            configure(_services, options);
        }

        var service = new XenstoreBackendService(store, hypervisors, options);
        Service = service;
        foreach (Action<IServiceProvider, XenstoreBackendService> created in _builder.Created)
        {
            created(_services, service);
        }

        // RunAsync places its watches before its first await: when it returns, xenstore reports every change under the
        // backend directories from now on (and fires each watch once, which picks up the devices already there). A
        // watch refused fails the task at once: the start fails with it.
        Task running = service.RunAsync(_stop.Token);
        _running = running;
        if (running.IsFaulted)
        {
            await running.ConfigureAwait(false);
        }

        Watching = true;
        _watch = WatchAsync(running);
    }

    /// <summary>
    /// Tears every device down: by the service itself within <see cref="XenstoreBackendHostOptions.StopTimeout"/> or
    /// before <paramref name="cancellationToken"/> (the host's shutdown timeout), whichever comes first; otherwise the
    /// ioreq servers still served are destroyed directly (<see cref="TeardownAbandoned"/>).
    /// </summary>
    /// <param name="cancellationToken">The host's shutdown timeout.</param>
    /// <returns>A task that completes once every device's ioreq server is destroyed.</returns>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stop.Cancel();
        if (_running is not Task running)
        {
            return;
        }

        using var giveUp = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        giveUp.CancelAfter(_options.StopTimeout);
        var gaveUp = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using (giveUp.Token.Register(() => gaveUp.TrySetResult(true)))
        {
            if (await Task.WhenAny(running, gaveUp.Task).ConfigureAwait(false) == running)
            {
                await _watch.ConfigureAwait(false);
                Log.Stopped(_logger, _options.BackendDomain);
                return;
            }
        }

        TeardownAbandoned = true;
        int destroyed = DestroyServersDirectly(Service!, _hypervisors!);
        Log.Abandoned(_logger, _options.StopTimeout.TotalSeconds, destroyed);
    }

    /// <summary>Releases the service and a store the host opened — unless a stop abandoned the teardown, which may still be inside a device's call.</summary>
    public void Dispose()
    {
        // The container disposes this instance once as itself and once as the hosted service it also is.
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _stop.Cancel();
        if (TeardownAbandoned)
        {
            return;
        }

        Service?.Dispose();
        _ownedStore?.Dispose();
        _stop.Dispose();
    }

    private XenStore OpenStore()
    {
        if (!XenStore.TryOpen(out XenStore? store, out string? reason))
        {
            throw new InvalidOperationException(reason);
        }

        _ownedStore = store;
        return store;
    }

    // The service's own teardown is stuck in a device's call: destroy, from here, every ioreq server still served — the
    // stuck device's and those after it — through hypervisor access of their domain's, so Xen stops routing their
    // ranges to this process. The service publishes a device's server id while it serves it.
    private int DestroyServersDirectly(XenstoreBackendService service, IBackendHypervisors hypervisors)
    {
        int destroyed = 0;
        foreach (BackendDeviceStatus device in service.Devices)
        {
            if (device.IoreqServer is not ushort id)
            {
                continue;
            }

            try
            {
                IHypervisor hypervisor = hypervisors.Acquire(device.FrontendDomain);
                try
                {
                    hypervisor.DestroyIoreqServer(device.FrontendDomain, id);
                    destroyed++;
                }
                catch (HypervisorException e) when (e.ErrorNumber == Errno.ENOENT)
                {
                    // Gone already: its loop finished after all, or the domain was destroyed.
                }
                finally
                {
                    hypervisors.Release(device.FrontendDomain, hypervisor);
                }
            }
            catch (HypervisorException e)
            {
                Log.DestroyFailed(_logger, device.FrontendDomain, device.DeviceId, id, e);
            }
        }

        return destroyed;
    }

    // Stops the application when the service ends without being asked to: a backend that no longer watches xenstore
    // serves no new device, and the service manager should know (and restart it).
    private async Task WatchAsync(Task running)
    {
        try
        {
            await running.ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Failure = e;
            Log.Failed(_logger, e);
        }

        if (!_stop.IsCancellationRequested)
        {
            StoppedByItself = true;
            Log.StoppedByItself(_logger, _options.BackendDomain);
            _lifetime.StopApplication();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Stopped: the backend of domain {BackendDomain} tore every device down")]
        public static partial void Stopped(ILogger logger, ushort backendDomain);

        [LoggerMessage(2, LogLevel.Warning, "Stopped: the teardown did not finish within {Seconds} s (a device call is still running); {Destroyed} ioreq server(s) destroyed without their loops, the loops abandoned")]
        public static partial void Abandoned(ILogger logger, double seconds, int destroyed);

        [LoggerMessage(3, LogLevel.Error, "Cannot destroy ioreq server {Server} of domain {Domain} device {Device}: it still claims the device's addresses until the guest is destroyed")]
        public static partial void DestroyFailed(ILogger logger, ushort domain, uint device, ushort server, Exception exception);

        [LoggerMessage(4, LogLevel.Error, "The backend service failed")]
        public static partial void Failed(ILogger logger, Exception exception);

        [LoggerMessage(5, LogLevel.Error, "The backend of domain {BackendDomain} stopped by itself (its xenstore connection closed, or it failed); stopping the application")]
        public static partial void StoppedByItself(ILogger logger, ushort backendDomain);
    }
}
