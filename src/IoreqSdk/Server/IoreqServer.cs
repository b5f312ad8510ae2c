using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;
using IoreqSdk.Platforms;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace IoreqSdk.Server;

/// <summary>
/// The engine: one ioreq server for one guest domain. It brings the server up in Xen's order (create → map pages →
/// claim ranges → enable → bind ports), runs a dedicated event-loop thread that answers every synchronous request
/// and drains the buffered ring, and tears down in mirror order (disable → unbind → unmap → destroy) on
/// <see cref="Stop"/> or <see cref="Dispose"/>.
/// </summary>
/// <remarks>
/// <para>
/// <b>Threads.</b> Devices are called on the loop thread only, one call at a time — unless the server runs several
/// loop threads (<see cref="IoreqServerOptions.LoopThreads"/>), which serve accesses to the regions devices declared
/// concurrent (<see cref="DeviceModel.ServeConcurrently"/>) in parallel. Everything a device can reach
/// through its <see cref="IDeviceContext"/> says which threads may use it. Every user callback the loop runs — device
/// handlers, posted work, completions of off-loop work, <see cref="TimeOffsetChanged"/> handlers — is contained: an
/// exception is counted in <see cref="IoreqServerStatistics.DeviceFaults"/> and logged (at most once a second), and
/// the loop goes on. A callback that holds the loop longer than <see cref="IoreqServerOptions.LoopStallThreshold"/>
/// is counted in <see cref="IoreqServerStatistics.LoopOverruns"/> and logged the same way.
/// </para>
/// <para>
/// <b>Stopping.</b> <see cref="Stop"/> and <see cref="Dispose"/> may be called from any thread, concurrently and
/// more than once. From another thread they return once the server is torn down. From the loop thread (a device
/// handler or posted work) they only request the stop and return at once: the request being served is answered
/// first, then the loop tears the server down itself.
/// </para>
/// </remarks>
public sealed class IoreqServer : IDisposable
{
    private readonly IHypervisor _hypervisor;
    private readonly IoreqServerOptions _options;
    private readonly GuestPlatform _platform;
    private readonly ILogger _logger;
    private readonly List<IDeviceModel> _devices = new();
    private readonly List<(PciSbdf Sbdf, IPciConfigSpace Config)> _pciFunctions = new();
    private readonly GuestMemoryCache _memory;
    private readonly IoDispatcher _dispatcher;
    private readonly LoopDiagnostics _diagnostics;
    private readonly RegionMap _regions;
    private readonly EventLoop _eventLoop;
    private readonly DeviceContext _context;
    private readonly ServerStages _stages;
    private readonly ServerLifecycle _lifecycle;

    /// <summary>Creates a server; nothing happens in the hypervisor until <see cref="Start"/>.</summary>
    /// <param name="hypervisor">The hypervisor port (real or simulated Xen).</param>
    /// <param name="options">How to run; validated and copied here (later changes to the object have no effect).</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of its range (each option's documentation gives it).</exception>
    public IoreqServer(IHypervisor hypervisor, IoreqServerOptions options)
    {
        _hypervisor = hypervisor ?? throw new ArgumentNullException(nameof(hypervisor));
        _options = (options ?? throw new ArgumentNullException(nameof(options))).ValidatedCopy();
        _platform = _options.Platform ?? GuestPlatform.For(hypervisor.Architecture);
        if (_platform.Architecture != hypervisor.Architecture)
        {
            ThrowHelper.ThrowArgument(nameof(options), $"The options' platform describes {_platform.Architecture} guests; this hypervisor serves {hypervisor.Architecture} guests.");
        }

        _platform.Validate();
        _logger = _options.LoggerFactory?.CreateLogger<IoreqServer>() ?? (ILogger)NullLogger.Instance;
        Statistics = new IoreqServerStatistics();
        _diagnostics = new LoopDiagnostics(_logger, Statistics, _options.LoopStallThreshold, LoopDiagnostics.EventLoopName);
        _memory = new GuestMemoryCache(hypervisor, _options.Domain, _options.GuestMemoryCacheFrames, _options.GuestMemoryPinWindows, Statistics.Memory);
        _dispatcher = new IoDispatcher(_memory, Statistics.Requests, OnDeviceFault);
        _regions = new RegionMap(hypervisor, _options.Domain, _platform, _dispatcher);
        _eventLoop = new EventLoop(this, Statistics, _dispatcher, _memory, _diagnostics, _logger, _options);
        _context = new DeviceContext(this, _eventLoop, _memory);
        _stages = new ServerStages(hypervisor, _options, _platform, _logger, _dispatcher, _regions, _eventLoop, _memory, _devices, _pciFunctions);
        _lifecycle = new ServerLifecycle(this, _stages, _eventLoop, _memory, _logger, _options);
    }

    /// <summary>The guest domain.</summary>
    public ushort Domain => _options.Domain;

    /// <summary>The server id Xen assigned; valid while running.</summary>
    public ushort Id => _stages.Id;

    /// <summary>
    /// Whether the server is running (started and not yet stopped). It turns false when teardown begins; the server is
    /// destroyed in the hypervisor when <see cref="Stop"/> returns on a thread other than the loop's, or, for a stop
    /// the loop itself asked for, when <see cref="RunAsync"/> completes.
    /// </summary>
    public bool IsRunning => _stages.IsRunning;

    /// <summary>Whether teardown has finished: nothing of the server is left in the hypervisor (for tests of stops the loop asked for).</summary>
    internal bool IsTornDown => _stages.Current == ServerStages.Stage.None;

    /// <summary>The server's counters.</summary>
    public IoreqServerStatistics Statistics { get; }

    /// <summary>The guest machine the server serves (its buffered-ring mode, port I/O, interrupt lines).</summary>
    public GuestPlatform Platform => _platform;

    /// <summary>The hypervisor the server runs on.</summary>
    internal IHypervisor Hypervisor => _hypervisor;

    /// <summary>The guest-memory map cache's mapped frame count (for diagnostics and tests).</summary>
    internal int MappedGuestFrames => _memory.MappedFrames;

    /// <summary>Whether the caller runs on the event loop (the only thread that may touch devices and guest memory).</summary>
    internal bool IsLoopThread => _eventLoop.IsLoopThread;

    /// <summary>The <see cref="TimeOffsetChanged"/> handlers, which the loop raises.</summary>
    internal EventHandler<TimeOffsetEventArgs>? TimeOffsetHandlers => TimeOffsetChanged;

    /// <summary>Raised on the event loop when the guest changes its RTC (x86, buffered). Handlers are contained like
    /// device code: an exception is counted in <see cref="IoreqServerStatistics.DeviceFaults"/>, the others still run.</summary>
    public event EventHandler<TimeOffsetEventArgs>? TimeOffsetChanged;

    /// <summary>
    /// A platform device's interrupt line, numbered as the server's platform numbers them (an ISA IRQ on x86, an SPI on
    /// Arm64): give it to the device when you build it. PCI functions get theirs from their host bridge.
    /// </summary>
    /// <param name="line">The line's number on the platform.</param>
    /// <returns>The line.</returns>
    public InterruptLine CreateInterruptLine(uint line) => _platform.CreateInterruptLine(_hypervisor, Domain, line);

    /// <summary>Adds a device; its regions with fixed addresses are claimed when the server starts.</summary>
    /// <param name="device">The device.</param>
    public void AddDevice(IDeviceModel device)
    {
        if (device is null)
        {
            throw new ArgumentNullException(nameof(device));
        }

        _lifecycle.ThrowIfLoopThread();
        lock (_lifecycle.Gate)
        {
            if (_stages.Current != ServerStages.Stage.None)
            {
                ThrowHelper.ThrowInvalidOperation("Devices are added before the server starts.");
            }

            foreach (DeviceRegion region in device.Regions)
            {
                if (region.Kind == RegionKind.Port && !_platform.HasPortIo && region.InitialAddress is not null)
                {
                    ThrowHelper.ThrowInvalidOperation($"{region}: this guest has no port I/O; reach I/O regions through a host bridge's PIO aperture.");
                }
            }

            _devices.Add(device);
            device.Attach(_context);
        }
    }

    /// <summary>Routes a PCI function's configuration requests (x86 <c>PCI_CONFIG</c>) to its configuration space.</summary>
    /// <param name="sbdf">The function.</param>
    /// <param name="config">Its configuration space.</param>
    public void AddPciFunction(PciSbdf sbdf, IPciConfigSpace config)
    {
        _lifecycle.ThrowIfLoopThread();
        lock (_lifecycle.Gate)
        {
            if (_stages.Current != ServerStages.Stage.None)
            {
                ThrowHelper.ThrowInvalidOperation("PCI functions are added before the server starts.");
            }

            _pciFunctions.Add((sbdf, config ?? throw new ArgumentNullException(nameof(config))));
        }
    }

    /// <summary>Creates the server in Xen, maps its pages, claims its ranges, enables it, binds its ports and starts its event loop.</summary>
    public void Start() => _lifecycle.Start();

    /// <summary>
    /// Starts the server, serves until <paramref name="cancellationToken"/> is cancelled (Ctrl-C, SIGTERM or a host's
    /// shutdown, as the caller wires it) or the server stops by itself (a device called <see cref="Stop"/>, or the
    /// event loop failed), then stops it — the ioreq server is destroyed before the task completes.
    /// </summary>
    /// <param name="cancellationToken">Ends the run.</param>
    /// <returns>A task that completes once the server is torn down.</returns>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Start();
        try
        {
            Task stopped = _lifecycle.Stopped;
            var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using (cancellationToken.Register(() => cancelled.TrySetResult(true)))
            {
                await Task.WhenAny(cancelled.Task, stopped).ConfigureAwait(false);
            }
        }
        finally
        {
            Stop();
        }
    }

    /// <summary>
    /// Stops the event loop and undoes <see cref="Start"/> in mirror order. Safe to call more than once, and from any
    /// thread, concurrently: from another thread it returns once the server is torn down; from the loop thread (a
    /// device handler, posted work) it requests the stop and returns — the request being served is answered first.
    /// </summary>
    public void Stop() => _lifecycle.Stop();

    /// <inheritdoc/>
    /// <remarks>As <see cref="Stop"/>, then the guest-memory cache is released for good; a disposed server does not
    /// start again.</remarks>
    public void Dispose() => _lifecycle.Dispose();

    internal void ThrowIfRunningOffLoop(string what)
    {
        if (_stages.IsRunning && !IsLoopThread)
        {
            ThrowHelper.ThrowInvalidOperation($"{what} is used from the server's event-loop thread only while the server runs (a device handler, posted work or a completion); from another thread, Post the work.");
        }
    }

    /// <summary>The server's dispatcher, for the benchmarks that measure it in place (the event loop owns it).</summary>
    internal IoDispatcher Dispatcher => _dispatcher;

    private void OnDeviceFault(IDeviceModel device, Exception exception) => _diagnostics.ReportDeviceFault(device, exception);

    /// <summary>
    /// Maps (or moves) a region into an address space. The space is normally the region's own kind; a host bridge's
    /// PIO aperture maps a port region into MMIO space, where the device still sees port-relative offsets.
    /// </summary>
    internal void MapRegion(DeviceRegion region, RegionKind space, ulong address)
    {
        ThrowIfRunningOffLoop("Region mapping");
        _regions.Map(region, space, address);
    }

    /// <summary>As <see cref="MapRegion"/> for a mapping the guest asked for (a BAR it programmed): what cannot be
    /// mapped is a result, not an exception, and the region is left unmapped.</summary>
    internal RegionMapResult TryMapRegion(DeviceRegion region, RegionKind space, ulong address)
    {
        ThrowIfRunningOffLoop("Region mapping");
        return _regions.TryMap(region, space, address);
    }

    internal void UnmapRegion(DeviceRegion region)
    {
        ThrowIfRunningOffLoop("Region mapping");
        _regions.Unmap(region);
    }
}
