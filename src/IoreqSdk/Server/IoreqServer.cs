using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
#if NETCOREAPP
using System.Runtime.CompilerServices;
#endif
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;
using IoreqSdk.Pci;
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
public sealed partial class IoreqServer : IIoreqServer
{
    private readonly IHypervisor _hypervisor;
    private readonly IoreqServerOptions _options;
    private readonly GuestPlatform _platform;
    private readonly ILogger _logger;
    private readonly List<IDeviceModel> _devices = new();
    private readonly List<(PciSbdf Sbdf, IPciConfigSpace Config)> _pciFunctions = new();
    private readonly Dictionary<DeviceRegion, RegionKind> _mapped = new();
    private readonly ConcurrentQueue<Action> _posted = new();
    private readonly GuestMemoryCache _memory;
    private readonly IoDispatcher _dispatcher;
    private readonly DeviceContext _context;
    private readonly object _lifecycle = new();
    private readonly Action<long> _onTimeOffset;

    private Stage _stage;
    private ushort _id;
    private IoreqServerPages? _pages;
    private SharedIoPage _ioreqPage;
    private BufferedIoPage _bufferedPage;
    private bool _hasRing;
    private IEventChannel? _channel;
    private uint[] _localPorts = [];
    private int[] _vcpuOfPort = [];
    private uint _bufferedLocalPort = uint.MaxValue;
    private Thread? _loop;
    private volatile bool _stopping;
    private int _loopThreadId;
    private long _lastFaultLog;
    private long _suppressedFaults;

    /// <summary>Creates a server; nothing happens in the hypervisor until <see cref="Start"/>.</summary>
    /// <param name="hypervisor">The hypervisor port (real or simulated Xen).</param>
    /// <param name="options">How to run.</param>
    public IoreqServer(IHypervisor hypervisor, IoreqServerOptions options)
    {
        _hypervisor = hypervisor ?? throw new ArgumentNullException(nameof(hypervisor));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _platform = options.Platform ?? GuestPlatform.For(hypervisor.Architecture);
        if (_platform.Architecture != hypervisor.Architecture)
        {
            ThrowHelper.ThrowArgument(nameof(options), $"The options' platform describes {_platform.Architecture} guests; this hypervisor serves {hypervisor.Architecture} guests.");
        }

        _platform.Validate();
        _logger = options.LoggerFactory?.CreateLogger<IoreqServer>() ?? (ILogger)NullLogger.Instance;
        Statistics = new IoreqServerStatistics();
        _memory = new GuestMemoryCache(hypervisor, options.Domain, options.GuestMemoryCacheFrames);
        _dispatcher = new IoDispatcher(_memory, Statistics, OnDeviceFault);
        _context = new DeviceContext(this);
        _onTimeOffset = delta => TimeOffsetChanged?.Invoke(this, new TimeOffsetEventArgs(delta));
    }

    /// <summary>The stages of bring-up, in order; teardown undoes them from the last reached.</summary>
    private enum Stage
    {
        None,
        Created,
        PagesMapped,
        RangesClaimed,
        Enabled,
        PortsBound,
        Running,
    }

    /// <inheritdoc/>
    public ushort Domain => _options.Domain;

    /// <inheritdoc/>
    public ushort Id => _id;

    /// <inheritdoc/>
    public bool IsRunning => _stage == Stage.Running;

    /// <inheritdoc/>
    public IoreqServerStatistics Statistics { get; }

    /// <summary>The guest machine the server serves (its buffered-ring mode, port I/O, interrupt lines).</summary>
    public GuestPlatform Platform => _platform;

    /// <summary>The hypervisor the server runs on.</summary>
    internal IHypervisor Hypervisor => _hypervisor;

    /// <summary>The guest-memory map cache's mapped frame count (for diagnostics and tests).</summary>
    internal int MappedGuestFrames => _memory.MappedFrames;

    /// <inheritdoc/>
    public event EventHandler<TimeOffsetEventArgs>? TimeOffsetChanged;

    /// <summary>
    /// A platform device's interrupt line, numbered as the server's platform numbers them (an ISA IRQ on x86, an SPI on
    /// Arm64): give it to the device when you build it. PCI functions get theirs from their host bridge.
    /// </summary>
    /// <param name="line">The line's number on the platform.</param>
    /// <returns>The line.</returns>
    public InterruptLine CreateInterruptLine(uint line) => _platform.CreateInterruptLine(_hypervisor, Domain, line);

    /// <inheritdoc/>
    public void AddDevice(IDeviceModel device)
    {
        if (device is null)
        {
            throw new ArgumentNullException(nameof(device));
        }

        lock (_lifecycle)
        {
            if (_stage != Stage.None)
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

    /// <inheritdoc/>
    public void AddPciFunction(PciSbdf sbdf, IPciConfigSpace config)
    {
        lock (_lifecycle)
        {
            if (_stage != Stage.None)
            {
                ThrowHelper.ThrowInvalidOperation("PCI functions are added before the server starts.");
            }

            _pciFunctions.Add((sbdf, config ?? throw new ArgumentNullException(nameof(config))));
        }
    }

    /// <inheritdoc/>
    public void Start()
    {
        lock (_lifecycle)
        {
            if (_stage != Stage.None)
            {
                ThrowHelper.ThrowInvalidOperation("The server was started already.");
            }

            try
            {
                BringUp();
            }
            catch
            {
                TearDown();
                throw;
            }
        }
    }

    /// <summary>
    /// Starts the server, serves until <paramref name="cancellationToken"/> is cancelled (Ctrl-C, SIGTERM or a host's
    /// shutdown, as the caller wires it), then stops it — the ioreq server is destroyed before the task completes.
    /// </summary>
    /// <param name="cancellationToken">Ends the run.</param>
    /// <returns>A task that completes once the server is torn down.</returns>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Start();
        try
        {
            var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using (cancellationToken.Register(() => cancelled.TrySetResult(true)))
            {
                await cancelled.Task.ConfigureAwait(false);
            }
        }
        finally
        {
            Stop();
        }
    }

    /// <inheritdoc/>
    public void Stop()
    {
        lock (_lifecycle)
        {
            TearDown();
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Stop();
        _memory.Dispose();
    }

    private void BringUp()
    {
        ushort domain = _options.Domain;
        BufferedIoreqMode mode = _options.BufferedMode ?? _platform.BufferedMode;

        _id = _hypervisor.CreateIoreqServer(domain, mode);
        _stage = Stage.Created;

        // Pages first: enabling a server whose pages were never acquired has crashed Xen 4.17.
        _hasRing = mode != BufferedIoreqMode.Off;
        _pages = _hypervisor.AcquireIoreqServerPages(domain, _id, _hasRing);
        _ioreqPage = new SharedIoPage(_pages.IoreqPage);
        _bufferedPage = _hasRing ? new BufferedIoPage(_pages.BufferedPage) : default;
        _stage = Stage.PagesMapped;

        foreach (IDeviceModel device in _devices)
        {
            foreach (DeviceRegion region in device.Regions)
            {
                if (region.InitialAddress is ulong address)
                {
                    MapRegion(region, region.Kind, address);
                }
            }
        }

        foreach ((PciSbdf sbdf, IPciConfigSpace config) in _pciFunctions)
        {
            _dispatcher.AddPciFunction(sbdf, config);
            _hypervisor.MapIoRange(domain, _id, IoRangeType.Pci, sbdf.Value, sbdf.Value);
        }

        _stage = Stage.RangesClaimed;

        _hypervisor.SetIoreqServerState(domain, _id, enabled: true);
        _stage = Stage.Enabled;

        // vp_eport is filled in by Xen when the server is enabled: bind only now.
        int vcpus = _hypervisor.GetVcpuCount(domain);
        if (vcpus <= 0 || vcpus > SharedIoPage.SlotCount)
        {
            throw new HypervisorException($"The guest reports {vcpus} vCPUs; an ioreq page serves 1 to {SharedIoPage.SlotCount}.");
        }

        _channel = _hypervisor.OpenEventChannel();
        _stage = Stage.PortsBound;
        _localPorts = new uint[vcpus];
        uint highest = 0;
        for (int vcpu = 0; vcpu < vcpus; vcpu++)
        {
            // Enabling was a hypercall (a full barrier): Xen's stores of vp_eport are visible to this plain read.
            uint remote = _ioreqPage.Slot(vcpu).VcpuEventPort;
            _localPorts[vcpu] = _channel.BindInterdomain(domain, remote);
            highest = Math.Max(highest, _localPorts[vcpu]);
        }

        if (_hasRing)
        {
            _bufferedLocalPort = _channel.BindInterdomain(domain, _hypervisor.GetBufferedIoreqPort(domain, _id));
            highest = Math.Max(highest, _bufferedLocalPort);
        }

        _vcpuOfPort = new int[highest + 1];
        _vcpuOfPort.AsSpan().Fill(-1);
        for (int vcpu = 0; vcpu < vcpus; vcpu++)
        {
            _vcpuOfPort[_localPorts[vcpu]] = vcpu;
        }

        // Deprivilege before the guest can reach any device: everything above (and all the loop does) acts on this
        // guest only, so it works the same on restricted handles. A failure fails Start, and the server is torn down.
        if (_options.RestrictHandlesToDomain)
        {
            _hypervisor.Restrict(domain);
        }

        _stopping = false;
        _loop = new Thread(RunLoop) { IsBackground = true, Name = $"ioreq d{domain} s{_id}" };
        _loop.Start();
        _stage = Stage.Running;
        IoreqServerMetrics.Register(this);
        Log.Started(_logger, domain, _id, vcpus, mode);
    }

    private void TearDown()
    {
        ushort domain = _options.Domain;
        if (_stage == Stage.Running)
        {
            IoreqServerMetrics.Unregister(this);
            _stopping = true;
            _channel!.Interrupt();
            if (Environment.CurrentManagedThreadId != _loopThreadId)
            {
                _loop!.Join();
            }

            _stage = Stage.PortsBound;
        }

        if (_stage >= Stage.Enabled)
        {
            Attempt(() => _hypervisor.SetIoreqServerState(domain, _id, enabled: false), "disable");
        }

        if (_stage >= Stage.PortsBound && _channel is not null)
        {
            foreach (uint port in _localPorts)
            {
                Attempt(() => _channel.Unbind(port), "unbind");
            }

            if (_bufferedLocalPort != uint.MaxValue)
            {
                Attempt(() => _channel.Unbind(_bufferedLocalPort), "unbind");
            }

            _channel.Dispose();
            _channel = null;
            _localPorts = [];
            _bufferedLocalPort = uint.MaxValue;
        }

        if (_stage >= Stage.PagesMapped)
        {
            // Ranges go with the server (destroy deregisters them); the dispatcher forgets them now.
            foreach (DeviceRegion region in new List<DeviceRegion>(_mapped.Keys))
            {
                _dispatcher.RemoveRange(region);
                region.Address = null;
            }

            _mapped.Clear();
            foreach ((_, IPciConfigSpace config) in _pciFunctions)
            {
                _dispatcher.RemovePciFunction(config);
            }

            _memory.Invalidate();
            _pages?.Dispose();
            _pages = null;
        }

        if (_stage >= Stage.Created)
        {
            Attempt(() => _hypervisor.DestroyIoreqServer(domain, _id), "destroy");
            Log.Stopped(_logger, domain, _id);
        }

        _stage = Stage.None;
    }

    private void Attempt(Action step, string what)
    {
        try
        {
            step();
        }
        catch (Exception e) when (e is HypervisorException or InvalidOperationException)
        {
            // Teardown goes on: every later step still has to run for the server not to leak.
            Log.TeardownStepFailed(_logger, what, e);
        }
    }

    // Entered once and left only at Stop: without this the loop would run as tier-0 code until on-stack replacement
    // swaps in a less optimised copy mid-loop; fully optimised from the first request instead. (.NET Framework, the
    // other runtime of the netstandard2.0 build, has no tiers.)
#if NETCOREAPP
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
#endif
    private void RunLoop()
    {
        _loopThreadId = Environment.CurrentManagedThreadId;
        IEventChannel channel = _channel!;
        while (!_stopping)
        {
            if (!channel.WaitPending(out uint port))
            {
                RunPosted();
                continue;
            }

            // The kernel masks a port when it delivers it; unmask before serving so that the next request of this
            // vCPU (which cannot be sent before we answer) is delivered.
            channel.Unmask(port);

            // Buffered writes happened before any synchronous request that follows them: drain first.
            DrainBufferedRing();

            if (port == _bufferedLocalPort)
            {
                continue;
            }

            int[] vcpuOfPort = _vcpuOfPort;
            int vcpu = port < (uint)vcpuOfPort.Length ? vcpuOfPort[port] : -1;
            if (vcpu < 0)
            {
                Statistics.SpuriousEvent++;
                continue;
            }

            Serve(vcpu);
            RunPosted();
        }
    }

    private void Serve(int vcpu)
    {
        SharedIoPage page = _ioreqPage;

        // Acquire: the request's fields, published before READY, are visible to the copy below.
        if (page.ReadStateAcquire(vcpu) != IoreqState.Ready)
        {
            Statistics.SpuriousEvent++;
            return;
        }

        // One copy, taken now; the shared slot is never read again while the request is handled.
        IoRequest request = page.ReadRequest(vcpu);
        page.WriteStateRelease(vcpu, IoreqState.InProcess);

        ulong data;
        if (request.Type == IoreqType.Invalidate)
        {
            // Every cached mapping of guest RAM goes before the answer: the guest's physmap changed.
            _memory.Invalidate();
            Statistics.Invalidate++;
            data = request.Data;
        }
        else
        {
            data = _dispatcher.Dispatch(in request);
        }

        // data, then state = IORESP_READY with release semantics, then the notification that wakes the vCPU.
        page.WriteResponse(vcpu, data);
        _channel!.Notify(_localPorts[vcpu]);
    }

    private void DrainBufferedRing()
    {
        if (_hasRing)
        {
            BufferedRingConsumer.Drain(_bufferedPage, _dispatcher, Statistics, _onTimeOffset);
        }
    }

    private void RunPosted()
    {
        while (_posted.TryDequeue(out Action? work))
        {
            try
            {
                work();
            }
            catch (Exception e)
            {
                Statistics.DeviceFault++;
                Log.PostedWorkFailed(_logger, e);
            }
        }
    }

    private void OnDeviceFault(IDeviceModel device, Exception exception)
    {
        // At most one report per second; the ones in between are counted and reported with the next.
        long now = Stopwatch.GetTimestamp();
        if (now - _lastFaultLog < Stopwatch.Frequency && _lastFaultLog != 0)
        {
            _suppressedFaults++;
            return;
        }

        _lastFaultLog = now;
        if (_logger.IsEnabled(LogLevel.Warning))
        {
            Log.DeviceFault(_logger, device.Name, _suppressedFaults, exception);
        }

        _suppressedFaults = 0;
    }

    /// <summary>
    /// Maps (or moves) a region into an address space. The space is normally the region's own kind; a host bridge's
    /// PIO aperture maps a port region into MMIO space, where the device still sees port-relative offsets.
    /// </summary>
    internal void MapRegion(DeviceRegion region, RegionKind space, ulong address)
    {
        if (space == RegionKind.Port && !_platform.HasPortIo)
        {
            ThrowHelper.ThrowInvalidOperation($"{region}: this guest has no port I/O.");
        }

        ulong end = region.EndAt(address);
        if (end < address)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(address), "The region would wrap around the end of the address space.");
        }

        if (_mapped.ContainsKey(region))
        {
            UnmapRegion(region);
        }

        // Dispatcher first, then Xen: Xen never routes an address the dispatcher has no entry for.
        _dispatcher.AddRange(space, address, end, region);
        if (_stage >= Stage.Created)
        {
            try
            {
                _hypervisor.MapIoRange(_options.Domain, _id, RangeType(space), address, end);
            }
            catch
            {
                _dispatcher.RemoveRange(region);
                throw;
            }
        }

        region.Address = address;
        _mapped.Add(region, space);
    }

    internal void UnmapRegion(DeviceRegion region)
    {
        if (!_mapped.TryGetValue(region, out RegionKind space) || region.Address is not ulong address)
        {
            return;
        }

        _mapped.Remove(region);

        // Xen first, then the dispatcher: the mirror of MapRegion.
        if (_stage >= Stage.Created)
        {
            _hypervisor.UnmapIoRange(_options.Domain, _id, RangeType(space), address, region.EndAt(address));
        }

        _dispatcher.RemoveRange(region);
        region.Address = null;
    }

    private static IoRangeType RangeType(RegionKind kind) => kind == RegionKind.Mmio ? IoRangeType.Memory : IoRangeType.Port;

    private sealed class DeviceContext : IDeviceContext
    {
        private readonly IoreqServer _server;

        public DeviceContext(IoreqServer server) => _server = server;

        public IGuestMemory Memory => _server._memory;

        public void MapRegion(DeviceRegion region, ulong address) => _server.MapRegion(region, region.Kind, address);

        public void UnmapRegion(DeviceRegion region) => _server.UnmapRegion(region);

        public void Post(Action work)
        {
            _server._posted.Enqueue(work ?? throw new ArgumentNullException(nameof(work)));
            _server._channel?.Interrupt();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "ioreq server {Server} of domain {Domain} running: {Vcpus} vCPUs, buffered ring {Mode}")]
        public static partial void Started(ILogger logger, ushort domain, ushort server, int vcpus, BufferedIoreqMode mode);

        [LoggerMessage(2, LogLevel.Information, "ioreq server {Server} of domain {Domain} destroyed")]
        public static partial void Stopped(ILogger logger, ushort domain, ushort server);

        [LoggerMessage(3, LogLevel.Warning, "device {Device} threw while serving a request (answered with all-ones; {Suppressed} earlier faults not reported)")]
        public static partial void DeviceFault(ILogger logger, string device, long suppressed, Exception exception);

        [LoggerMessage(4, LogLevel.Warning, "teardown step '{Step}' failed; continuing")]
        public static partial void TeardownStepFailed(ILogger logger, string step, Exception exception);

        [LoggerMessage(5, LogLevel.Warning, "work posted to the device thread threw")]
        public static partial void PostedWorkFailed(ILogger logger, Exception exception);
    }
}
