using System;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Xen;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace IoreqSdk.Hosting;

/// <summary>
/// The hosted service that runs the ioreq server <see cref="IoreqServiceCollectionExtensions.AddIoreqServer"/>
/// registered. Starting the host brings the server up (a failure fails the start, with the reason); stopping the host
/// tears it down within <see cref="IoreqServerHostOptions.StopTimeout"/> and the host's shutdown timeout — and if the
/// event loop is stuck in a device call, destroys the ioreq server directly, so the guest's ranges are always released.
/// When the guest goes away (its domain destroyed) or the server stops by itself, the host's application is stopped.
/// </summary>
public sealed partial class IoreqServerHost : IHostedService, IDisposable
{
    private readonly IoreqServerBuilder _builder;
    private readonly IoreqServerHostOptions _options;
    private readonly IServiceProvider _services;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _watchStop = new();
    private IHypervisor? _ownedHypervisor;
    private Task _watch = Task.CompletedTask;
    private bool _disposed;

    /// <summary>Created by dependency injection.</summary>
    /// <param name="builder">What to serve.</param>
    /// <param name="options">How.</param>
    /// <param name="services">The application's services, for the device factories.</param>
    /// <param name="lifetime">The application, stopped when the guest is gone.</param>
    /// <param name="loggerFactory">The host's logging, for the server's and this service's logs.</param>
    public IoreqServerHost(IoreqServerBuilder builder, IOptions<IoreqServerHostOptions> options, IServiceProvider services, IHostApplicationLifetime lifetime, ILoggerFactory loggerFactory)
    {
        _builder = builder ?? throw new ArgumentNullException(nameof(builder));
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Value;
        _services = services ?? throw new ArgumentNullException(nameof(services));
        _lifetime = lifetime ?? throw new ArgumentNullException(nameof(lifetime));
        _loggerFactory = loggerFactory ?? throw new ArgumentNullException(nameof(loggerFactory));
        _logger = loggerFactory.CreateLogger<IoreqServerHost>();
    }

    /// <summary>The server, once the host started it.</summary>
    public IoreqServer? Server { get; private set; }

    /// <summary>The hypervisor it runs on (a <see cref="SimulatedHypervisor"/> in <see cref="IoreqHostMode.Simulated"/> mode).</summary>
    public IHypervisor? Hypervisor { get; private set; }

    /// <summary>The host bridge its PCI devices sit behind (<see langword="null"/> without PCI devices).</summary>
    public PciHostBridge? Bridge { get; private set; }

    /// <summary>Whether the application was stopped because the guest went away.</summary>
    public bool GuestGone { get; private set; }

    /// <summary>Whether the application was stopped because the server stopped by itself (its event loop failed: the server's log says why).</summary>
    public bool ServerStoppedByItself { get; private set; }

    /// <summary>Why the application was stopped when Xen could no longer be asked whether the guest is there; <see langword="null"/> otherwise.</summary>
    public HypervisorException? WatchFailure { get; private set; }

    /// <summary>
    /// Whether the last stop had to destroy the ioreq server without its event loop (a device call did not return in
    /// time); the loop and the hypervisor's handles are then left to the process's exit.
    /// </summary>
    public bool LoopAbandoned { get; private set; }

    /// <summary>Brings the server up: the hypervisor, the devices from their factories, the server started.</summary>
    /// <param name="cancellationToken">Not used: the bring-up is a handful of hypercalls.</param>
    /// <returns>A completed task once the server serves.</returns>
    /// <exception cref="InvalidOperationException">The options are invalid, or the hypervisor cannot be opened (the message says what to do).</exception>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (Server is not null)
        {
            throw new InvalidOperationException("The ioreq server host was started already.");
        }

        if (_options.Problem(hypervisorGiven: _builder.HypervisorFactory is not null) is string problem)
        {
            throw new InvalidOperationException(problem);
        }

        IHypervisor hypervisor = OpenHypervisor();
        Hypervisor = hypervisor;
        if (_options.Platform is { } platform && platform != hypervisor.Architecture)
        {
            throw new InvalidOperationException($"{IoreqServerHostOptions.SectionName}:{nameof(IoreqServerHostOptions.Platform)} says {platform} but this Xen serves {hypervisor.Architecture} guests; drop the setting or correct it.");
        }

        // A simulated Xen serves its one guest; on real Xen the options name it (checked above).
        ushort domain = hypervisor is SimulatedHypervisor simulated && (_options.Domain == 0 || _options.Mode == IoreqHostMode.Simulated) ? simulated.Domain : _options.Domain;
        if (domain == 0)
        {
            throw new InvalidOperationException($"{IoreqServerHostOptions.SectionName}:{nameof(IoreqServerHostOptions.Domain)}: no guest domain given; set it to the guest's id (1 to 32751).");
        }

        PciPlatform pciPlatform = _builder.Platform ?? GuestPlatform.For(hypervisor.Architecture);
        if (pciPlatform.Architecture != hypervisor.Architecture)
        {
            throw new InvalidOperationException($"The PCI platform given (UsePlatform) is {pciPlatform.Architecture}'s but this Xen serves {hypervisor.Architecture} guests.");
        }

        bool given = _builder.HypervisorFactory is not null;
        var server = new IoreqServer(hypervisor, new IoreqServerOptions
        {
            Domain = domain,
            Platform = pciPlatform,
            LoggerFactory = _loggerFactory,
            BusyPoll = _options.BusyPoll,
            LoopThreads = _options.LoopThreads,
            RestrictHandlesToDomain = _options.RestrictHandlesToDomain && (given ? _builder.RestrictGivenHypervisor : _options.Mode == IoreqHostMode.Xen),
        });
        Server = server;
        if (_builder.PciDevices.Count > 0)
        {
            Bridge = new PciHostBridge(server, pciPlatform, _builder.Segment);
            foreach ((Func<IServiceProvider, PciDevice> create, int number, int function) in _builder.PciDevices)
            {
                Bridge.AddDevice(create(_services), number, function);
            }
        }

        foreach (var create in _builder.Devices)
        {
            server.AddDevice(create(_services, server));
        }

        foreach (Action<IServiceProvider, IoreqServer> starting in _builder.Starting)
        {
            starting(_services, server);
        }

        server.Start();
        Log.Serving(_logger, domain, _options.Mode, hypervisor.Architecture, server.Id, _builder.PciDevices.Count + _builder.Devices.Count);
        foreach (Action<IServiceProvider, IoreqServer> started in _builder.Started)
        {
            started(_services, server);
        }

        _watch = WatchAsync(server, _watchStop.Token);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Tears the server down: by itself within <see cref="IoreqServerHostOptions.StopTimeout"/> or before
    /// <paramref name="cancellationToken"/> (the host's shutdown timeout), whichever comes first; otherwise the ioreq
    /// server is destroyed directly and the busy loop abandoned (<see cref="LoopAbandoned"/>).
    /// </summary>
    /// <param name="cancellationToken">The host's shutdown timeout.</param>
    /// <returns>A task that completes once the ioreq server is destroyed.</returns>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _watchStop.Cancel();
        IoreqServer? server = Server;
        if (server is null)
        {
            return;
        }

        using var giveUp = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        giveUp.CancelAfter(_options.StopTimeout);
        ushort id = server.Id;
        bool clean = await server.StopAsync(giveUp.Token).ConfigureAwait(false);
        LoopAbandoned = !clean;
        if (clean)
        {
            Log.Stopped(_logger, server.Domain, id, server.Statistics.PciConfigRequests, server.Statistics.MmioRequests, server.Statistics.PioRequests);
        }
        else
        {
            Log.Abandoned(_logger, server.Domain, id, _options.StopTimeout.TotalSeconds);
        }

        await _watch.ConfigureAwait(false);
    }

    /// <summary>Releases the server and a hypervisor the host opened — unless a stop abandoned the loop, which may still be inside a call on them.</summary>
    public void Dispose()
    {
        // The container disposes this instance once as itself and once as the hosted service it also is.
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _watchStop.Cancel();
        if (LoopAbandoned)
        {
            return;
        }

        Server?.Dispose();
        _ownedHypervisor?.Dispose();
        _watchStop.Dispose();
    }

    private IHypervisor OpenHypervisor()
    {
        if (_builder.HypervisorFactory is { } create)
        {
            return create(_services);
        }

        if (_options.Mode == IoreqHostMode.Simulated)
        {
            var options = new SimulationOptions { Architecture = _options.Platform ?? GuestArchitecture.X86 };
            if (_options.Domain != 0)
            {
                options.Domain = _options.Domain;
            }

            var simulated = new SimulatedHypervisor(options);
            _ownedHypervisor = simulated;
            return simulated;
        }

        if (!XenHypervisor.TryOpen(out XenHypervisor? xen, out string? reason))
        {
            throw new InvalidOperationException($"{reason} Or, for a dry run without Xen, set {IoreqServerHostOptions.SectionName}:{nameof(IoreqServerHostOptions.Mode)} to Simulated.");
        }

        _ownedHypervisor = xen;
        return xen;
    }

    // Stops the application when the guest is gone or the server stopped by itself: a device model does not serve on,
    // blind to its guest, nor linger after its server is gone.
    private async Task WatchAsync(IoreqServer server, CancellationToken cancellationToken)
    {
        ushort domain = server.Domain;
        try
        {
            bool gone = await server.WaitForGuestGoneAsync(_options.GuestCheckInterval, cancellationToken).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            GuestGone = gone;
            if (gone)
            {
                Log.GuestGone(_logger, domain);
            }
            else
            {
                ServerStoppedByItself = true;
                Log.StoppedByItself(_logger, domain);
            }
        }
        catch (HypervisorException e)
        {
            WatchFailure = e;
            Log.WatchFailed(_logger, domain, e);
        }

        _lifetime.StopApplication();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Serving domain {Domain} on {Mode} Xen ({Architecture}): ioreq server {Server}, {Devices} device(s)")]
        public static partial void Serving(ILogger logger, ushort domain, IoreqHostMode mode, GuestArchitecture architecture, ushort server, int devices);

        [LoggerMessage(2, LogLevel.Information, "Stopped: ioreq server {Server} of domain {Domain} destroyed; {PciConfig} PCI config, {Mmio} MMIO and {Pio} port I/O requests served")]
        public static partial void Stopped(ILogger logger, ushort domain, ushort server, long pciConfig, long mmio, long pio);

        [LoggerMessage(3, LogLevel.Warning, "Stopped: the event loop of domain {Domain} did not stop within {Seconds} s (a device call is still running); ioreq server {Server} destroyed without it, the loop abandoned")]
        public static partial void Abandoned(ILogger logger, ushort domain, ushort server, double seconds);

        [LoggerMessage(4, LogLevel.Information, "Domain {Domain} is gone (its ioreq server was destroyed by Xen); stopping the application")]
        public static partial void GuestGone(ILogger logger, ushort domain);

        [LoggerMessage(5, LogLevel.Error, "The ioreq server of domain {Domain} stopped by itself (its event loop failed: see the server's log); stopping the application")]
        public static partial void StoppedByItself(ILogger logger, ushort domain);

        [LoggerMessage(6, LogLevel.Error, "Cannot ask Xen about domain {Domain}'s ioreq server any more; stopping the application rather than serve blind to the guest's end")]
        public static partial void WatchFailed(ILogger logger, ushort domain, Exception exception);
    }
}
