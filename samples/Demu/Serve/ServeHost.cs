using System;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.Backends;
using IoreqSdk.Hosting.Xenstore;
using IoreqSdk.Hypervisor;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Demu.Serve;

/// <summary>
/// <c>demu serve</c> on the Generic Host: the backend service as IoreqSdk.Hosting's hosted service (AddXenstoreBackend),
/// over a store and hypervisor access the caller chose — libxenstore and real Xen, or the simulation. SIGINT, SIGTERM
/// and SIGQUIT stop it through the host's lifetime (systemd's, under systemd), SIGHUP and the caller's token the same
/// way; the stop tears every device down within <see cref="TeardownBound"/>.
/// </summary>
internal sealed class ServeHost : IDisposable
{
    /// <summary>How long the teardown of every device may take after a signal before demu destroys their servers directly and exits.</summary>
    public static readonly TimeSpan TeardownBound = TimeSpan.FromSeconds(20);

    private readonly IHost _host;
    private readonly ServeSettings _settings;
    private readonly IHostApplicationLifetime _lifetime;
    private CancellationTokenRegistration _cancellation;
    private IDisposable? _hangup;

    private ServeHost(IHost host, ServeSettings settings)
    {
        _host = host;
        _settings = settings;
        _lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        Backend = host.Services.GetRequiredService<XenstoreBackendHost>();
    }

    /// <summary>The hosted backend service.</summary>
    public XenstoreBackendHost Backend { get; }

    /// <summary>The host's services.</summary>
    public IServiceProvider Services => _host.Services;

    /// <summary>Cancelled when the host begins to stop.</summary>
    public CancellationToken Stopping => _lifetime.ApplicationStopping;

    /// <summary>The daemon's host over <paramref name="store"/> and <paramref name="hypervisors"/> (neither disposed by it).</summary>
    public static ServeHost Create(ServeSettings settings, IXenStore store, IBackendHypervisors hypervisors, Action<IServiceCollection>? configure = null)
    {
        // No defaults: demu reads no appsettings.json or environment of the directory it happens to run in.
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.Configure<ConsoleLifetimeOptions>(options => options.SuppressStatusMessages = true);
        builder.Services.Configure<HostOptions>(options => options.ShutdownTimeout = TeardownBound + TimeSpan.FromSeconds(5));
        builder.Services.Configure<XenstoreBackendHostOptions>(options =>
        {
            options.BackendDomain = settings.BackendDomain;
            options.RestrictHandlesToDomain = settings.Restrict;
            options.LoopThreads = settings.LoopThreads;
            options.StopTimeout = TeardownBound;
        });
        builder.Services.AddXenstoreBackend()
            .UseStore(_ => store)
            .UseHypervisors(_ => hypervisors)
            .ConfigureBackend((_, options) => options.AddStandardDevices())
            .OnCreated((services, service) =>
            {
                if (settings.Once)
                {
                    IHostApplicationLifetime lifetime = services.GetRequiredService<IHostApplicationLifetime>();
                    service.DeviceClosed += (_, e) =>
                    {
                        settings.Error.WriteLine($"demu serve: {e.Device}; --once: stopping");
                        lifetime.StopApplication();
                    };
                }
            });
        ServeLogging.Configure(builder.Logging, settings);
        configure?.Invoke(builder.Services);
        return new ServeHost(builder.Build(), settings);
    }

    /// <summary>Starts the host: when it returns, the service watches xenstore (and systemd was told READY=1).</summary>
    /// <returns>0 when it serves; 1 (the reason printed) when the service could not start.</returns>
    public async Task<int> StartAsync(CancellationToken cancellation)
    {
        _cancellation = cancellation.Register(() => _lifetime.StopApplication());
        _hangup = Teardown.OnHangup(_lifetime.StopApplication);
        try
        {
            await _host.StartAsync(CancellationToken.None).ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (e is XenStoreException or HypervisorException or InvalidOperationException)
        {
            _settings.Error.WriteLine($"demu serve: {e.Message}");
            return 1;
        }
    }

    /// <summary>Asks the host to stop (as a signal does).</summary>
    public void Stop() => _lifetime.StopApplication();

    /// <summary>Waits for the host to be stopped and torn down.</summary>
    /// <returns>0 when stopped on purpose (a signal, --once) with every device torn down; 1 otherwise, the reason printed.</returns>
    public async Task<int> WaitAsync()
    {
        await _host.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
        if (Backend.TeardownAbandoned)
        {
            // The servers still served were destroyed directly (their ids are in xenstore too: the next backend checks).
            _settings.Error.WriteLine("demu serve: the teardown did not finish in time; exiting anyway");
            return 1;
        }

        if (Backend.Failure is Exception failure)
        {
            _settings.Error.WriteLine($"demu serve: {failure.Message}");
            return 1;
        }

        // Stopped on purpose (a signal, --once) is success; the xenstore connection ending under the service is not.
        return Backend.StoppedByItself ? 1 : 0;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _cancellation.Dispose();
        _hangup?.Dispose();
        _host.Dispose();
    }
}
