using System;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Hosting;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Virtio.Pci;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Demu;

/// <summary>
/// demu's real-Xen run on the Generic Host: IoreqSdk.Hosting's <see cref="IoreqServerHost"/> serves the device for
/// --domain on the hypervisor it is given (real Xen from <see cref="XenRun"/>; a simulated Xen in the tests — the same
/// composition), and demu's own steps take their places around it: the restriction's witness call before the server
/// starts (<see cref="IoreqServerBuilder.OnStarting"/>), the "for domain, ioreq server" line, the restriction's proof
/// and the guest-side hints once it serves (<see cref="IoreqServerBuilder.OnStarted"/>), the serial device's standard
/// input as a hosted service started after it (<see cref="SerialInputPump"/>), the guest's end reported as the host
/// stops. The exit code and the last line come from how the host stopped.
/// </summary>
internal sealed class XenHost : IDisposable
{
    private readonly IHost _host;
    private readonly DemuSettings _settings;
    private readonly IHypervisor _hypervisor;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly TaskCompletionSource<bool> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _unrestricted;
    private VirtioMmioTransport? _mmio;
    private PciDevice? _function;
    private int _exitCode;
    private UnhandledExceptionEventHandler? _lastResort;

    private XenHost(IHost host, DemuSettings settings, IHypervisor hypervisor)
    {
        _host = host;
        _settings = settings;
        _hypervisor = hypervisor;
        _lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        Served = host.Services.GetRequiredService<IoreqServerHost>();
    }

    /// <summary>The hosted ioreq server.</summary>
    public IoreqServerHost Served { get; }

    /// <summary>The host's services.</summary>
    public IServiceProvider Services => _host.Services;

    /// <summary>Completes once the host started (the server serves, the hints are printed); faults or cancels when the start failed.</summary>
    public Task Started => _started.Task;

    /// <summary>Whether the stop had to destroy the ioreq server without its event loop; the loop, the device and the hypervisor's handles are then left to the process's exit.</summary>
    public bool Abandoned => Served.LoopAbandoned;

    /// <summary>
    /// The host for a run serving <paramref name="device"/> (a PCI function at --bdf) or <paramref name="virtio"/> (over
    /// --transport) to --domain on <paramref name="hypervisor"/>; <paramref name="compose"/> adds what a test needs.
    /// </summary>
    public static XenHost Create(DemuSettings settings, IHypervisor hypervisor, PciDevice? device, VirtioDevice? virtio, Action<IoreqServerBuilder>? compose = null)
    {
        // No defaults: demu reads no appsettings.json or environment of the directory it happens to run in.
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (settings.Verbose)
        {
            builder.Logging.SetMinimumLevel(LogLevel.Debug)
                .AddSimpleConsole(options => options.SingleLine = true)
                .AddConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace);
        }

        builder.Services.Configure<ConsoleLifetimeOptions>(options => options.SuppressStatusMessages = true);

        // The host's bound is the outer one: the loop's (StopTimeout) comes first, then destroying the server directly.
        builder.Services.Configure<HostOptions>(options => options.ShutdownTimeout = Teardown.DefaultBound + TimeSpan.FromSeconds(5));
        builder.Services.Configure<IoreqServerHostOptions>(options =>
        {
            options.Domain = settings.Domain!.Value;
            options.Platform = settings.Architecture;
            options.RestrictHandlesToDomain = settings.Restrict;
            options.BusyPoll = settings.BusyPoll;
            options.LoopThreads = settings.LoopThreads;
            options.StopTimeout = Teardown.DefaultBound;
        });

        XenHost? run = null;
        PciDevice? function = virtio is null ? device! : settings.Transport == VirtioTransport.Pci ? new VirtioPciTransport(virtio) : null;
        IoreqServerBuilder ioreq = builder.Services.AddIoreqServer()
            .UseHypervisor(_ => hypervisor, restrictHandles: true)
            .UsePlatform(settings.Platform, settings.Address.Segment)
            .OnStarting((_, _) => run!.BeforeStart())
            .OnStarted((_, server) => run!.AfterStart(server));
        if (function is not null)
        {
            ioreq.AddPciDevice(_ => function, settings.Address.Device, settings.Address.Function);
        }
        else
        {
            ioreq.AddDevice((_, server) => run!._mmio = new VirtioMmioTransport(virtio!, settings.VirtioMmioBase, server.CreateInterruptLine(settings.VirtioMmioLine)));
        }

        if (device is PciSerialDevice serial)
        {
            builder.Services.AddHostedService(_ => new SerialInputPump(serial, settings.Error));
        }

        compose?.Invoke(ioreq);
        run = new XenHost(builder.Build(), settings, hypervisor) { _function = function };
        return run;
    }

    /// <summary>Runs until a signal, the token, the guest's end or a failed restriction; then tears down, bounded.</summary>
    /// <returns>The exit code demu --help documents: 0, 1 (the run failed, or had to abandon the loop), 2 (the device's address is taken).</returns>
    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        using CancellationTokenRegistration stopOnToken = cancellation.Register(() => _lifetime.StopApplication());
        using IDisposable hangup = Teardown.OnHangup(_lifetime.StopApplication);
        using CancellationTokenRegistration stopping = _lifetime.ApplicationStopping.Register(ReportStop);
        try
        {
            try
            {
                await _host.StartAsync(CancellationToken.None).ConfigureAwait(false);
                _started.TrySetResult(true);
            }
            catch (HypervisorException e)
            {
                _started.TrySetException(e);
                _settings.Error.WriteLine($"demu: {e.Message}{XenRun.Advice(e)}");
                return DemuHelp.RunFailed;
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException && Served.Bridge is not null && Served.Server is { IsRunning: false })
            {
                // The bridge refused the function's slot (the host was adding the devices): demu says which option places it.
                _started.TrySetException(e);
                _settings.Error.WriteLine($"demu: --bdf {_settings.Address}: {e.Message} Choose another --bdf.");
                return DemuHelp.CannotRun;
            }

            await _host.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _started.TrySetCanceled(CancellationToken.None);
            if (_lastResort is not null)
            {
                AppDomain.CurrentDomain.UnhandledException -= _lastResort;
            }
        }

        if (Served.LoopAbandoned)
        {
            ushort id = Served.Server!.Id;
            TimeSpan bound = _host.Services.GetRequiredService<IOptions<IoreqServerHostOptions>>().Value.StopTimeout;
            _settings.Error.WriteLine(FormattableString.Invariant(
                $"demu: the event loop did not stop within {bound.TotalSeconds:0.#} s (a device call is still running); destroying ioreq server {id} without it."));
            _settings.Error.WriteLine($"demu: stopped; ioreq server {id} destroyed, the busy event loop abandoned.");
            return DemuHelp.RunFailed;
        }

        return Served.ServerStoppedByItself ? DemuHelp.RunFailed : _exitCode;
    }

    /// <summary>Releases the host (the ioreq server with it, unless the loop was abandoned).</summary>
    public void Dispose() => _host.Dispose();

    // Before Start restricts the handles: how the witness call ends unrestricted (ESRCH from Xen), for the proof after.
    private void BeforeStart() =>
        _unrestricted = _settings.Restrict ? RestrictionProof.CallFor(_hypervisor, RestrictionProof.Witness(_settings.Domain!.Value)) : null;

    private void AfterStart(IoreqServer server)
    {
        ushort domain = server.Domain;
        ushort id = server.Id;
        IHypervisor hypervisor = _hypervisor;

        // Whatever thread dies of an unhandled exception, the process goes with it: destroy the server first.
        _lastResort = (_, _) =>
        {
            try
            {
                hypervisor.DestroyIoreqServer(domain, id);
            }
            catch (Exception e) when (e is HypervisorException or ObjectDisposedException)
            {
                // Nothing more can be done on the way out.
            }
        };
        AppDomain.CurrentDomain.UnhandledException += _lastResort;

        (string what, string? hint) = Describe(Served.Bridge, server);
        _settings.Error.WriteLine($"demu: {what} for domain {domain}, ioreq server {id}; Ctrl-C to stop");
        if (_settings.Restrict)
        {
            bool holds = RestrictionProof.Check(hypervisor, domain, _unrestricted!, out string line);
            _settings.Error.WriteLine(line);
            if (!holds)
            {
                _exitCode = DemuHelp.RunFailed;
                _lifetime.StopApplication();
            }
        }

        if (hint is not null)
        {
            _settings.Error.WriteLine($"demu: {hint}");
        }
    }

    // Runs inside StopApplication, whoever called it: the guest-watch sets why before it asks the host to stop.
    private void ReportStop()
    {
        ushort domain = _settings.Domain!.Value;
        if (Served.GuestGone)
        {
            _settings.Error.WriteLine($"demu: domain {domain} is gone; stopping.");
        }
        else if (Served.WatchFailure is HypervisorException e)
        {
            _settings.Error.WriteLine($"demu: cannot ask Xen about domain {domain} any more ({e.Message}); stopping.");
        }
        else if (Served.ServerStoppedByItself)
        {
            _settings.Error.WriteLine($"demu: the ioreq server of domain {domain} stopped by itself (its event loop failed); stopping.");
        }
    }

    /// <summary>How the run names what it serves, and what to tell the user about the guest's side.</summary>
    private (string What, string? Hint) Describe(PciHostBridge? bridge, IoreqServer server)
    {
        string? bridgeHint = bridge?.Platform is EcamPlatform ? "describe the host bridge to the guest with this device-tree node:\n" + bridge.DescribeDeviceTreeNode() : null;
        if (_mmio is VirtioMmioTransport mmio)
        {
            string hint = _settings.Architecture == GuestArchitecture.Arm64
                ? $"the guest finds {_settings.VirtioName} through this device-tree node (libxl writes it for a virtio disk in the same slot):\n"
                    + VirtioMmioTransport.DescribeDeviceTreeNodeAt(mmio.Address, _settings.VirtioMmioLine)
                : FormattableString.Invariant($"give the guest's kernel virtio_mmio.device=512@0x{mmio.Address:x}:{_settings.VirtioMmioLine}");
            return (FormattableString.Invariant($"{_settings.VirtioName} over virtio-mmio at 0x{mmio.Address:x} ({mmio.Interrupt.Description})"), hint);
        }

        PciDevice function = _function!;
        return function is VirtioPciTransport pci
            ? ($"{_settings.VirtioName} over virtio-pci ({pci.Identity.VendorId:x4}:{pci.Identity.DeviceId:x4}) at {_settings.Address}", bridgeHint)
            : ($"{function.Name} ({function.Identity.VendorId:x4}:{function.Identity.DeviceId:x4}) at {_settings.Address}", bridgeHint);
    }
}
