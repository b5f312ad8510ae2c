using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.CompilerServices;
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
/// <remarks>
/// <para>
/// <b>Threads.</b> Devices are called on the loop thread only, one call at a time. Everything a device can reach
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
    private readonly object _wakeGate = new();
    private readonly long _stallTicks;
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
    private volatile bool _stopRequestedByLoop;
    private volatile bool _stoppedFromOutside;
    private volatile bool _disposeRequested;
    private bool _disposed;
    private int _loopThreadId;
    private int _postedCount;
    private volatile bool _acceptingPosts = true;
    private OffLoopWorker? _worker;

    // Completed when a run's teardown is done, whoever did it; continuations never run on the tearing-down thread.
    private TaskCompletionSource<bool>? _stopped;
    private ConcurrentQueue<OffLoopWorker.Item> _completions = new();
    private long _lastFaultLog;
    private long _suppressedFaults;
    private long _lastOverrunLog;
    private long _suppressedOverruns;

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
        _stallTicks = (long)(_options.LoopStallThreshold.TotalSeconds * Stopwatch.Frequency);
        _memory = new GuestMemoryCache(hypervisor, _options.Domain, _options.GuestMemoryCacheFrames);
        _dispatcher = new IoDispatcher(_memory, Statistics, OnDeviceFault);
        _context = new DeviceContext(this);
        _onTimeOffset = RaiseTimeOffsetChanged;
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

    /// <summary>Whether the caller runs on the event loop (the only thread that may touch devices and guest memory).</summary>
    internal bool IsLoopThread => Environment.CurrentManagedThreadId == Volatile.Read(ref _loopThreadId);

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

        ThrowIfLoopThread();
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
        ThrowIfLoopThread();
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
        ThrowIfLoopThread();
        lock (_lifecycle)
        {
            if (_disposed)
            {
                ThrowHelper.ThrowObjectDisposed(nameof(IoreqServer));
            }

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
                // Nothing after the loop thread's start can throw: the loop is not running here.
                TearDown();
                throw;
            }
        }
    }

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
            Task stopped = _stopped!.Task;
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

    /// <inheritdoc/>
    /// <remarks>From the loop thread (a device handler or posted work) this only requests the stop: the current
    /// request is answered first, then the loop tears the server down. From any other thread it returns once the
    /// server is torn down.</remarks>
    public void Stop()
    {
        if (IsLoopThread)
        {
            // Tearing down here would unmap the page and clear the ports the request being served still needs.
            _stopRequestedByLoop = true;
            _stopping = true;
            return;
        }

        lock (_lifecycle)
        {
            if (_stage == Stage.Running)
            {
                // The loop never waits for this lock while its stopper waits for it (see ExitLoop): join under it.
                _stoppedFromOutside = true;
                BeginStop();
                _loop!.Join();
            }

            TearDown();
        }
    }

    /// <inheritdoc/>
    /// <remarks>As <see cref="Stop"/>, then the guest-memory cache is released for good; a disposed server does not
    /// start again.</remarks>
    public void Dispose()
    {
        if (IsLoopThread)
        {
            _disposeRequested = true;
            Stop();
            return;
        }

        Stop();
        lock (_lifecycle)
        {
            _disposed = true;
            _memory.Dispose();
        }
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

        Log.Started(_logger, domain, _id, vcpus, mode);

        var completions = new ConcurrentQueue<OffLoopWorker.Item>();
        _completions = completions;
        _worker = new OffLoopWorker(_options.MaxOffLoopWork, $"ioreq d{domain} s{_id} worker", item =>
        {
            // A late item of a run that ended lands in that run's queue, which nobody reads any more.
            completions.Enqueue(item);
            try
            {
                Wake();
            }
            catch (Exception e) when (e is HypervisorException or ObjectDisposedException)
            {
                // The channel failed: the loop finds the completion at its next wake, if it has one.
            }
        });

        _stopped = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _stopping = false;
        _stopRequestedByLoop = false;
        _stoppedFromOutside = false;
        _acceptingPosts = true;
        _loop = new Thread(RunLoop) { IsBackground = true, Name = $"ioreq d{domain} s{_id}" };

        // Known before the first request: the loop-only services check it from the start.
        Volatile.Write(ref _loopThreadId, _loop.ManagedThreadId);
        _stage = Stage.Running;
        IoreqServerMetrics.Register(this);
        _loop.Start();

        // Work posted before the start (a device's OnAttached, say) found no channel to wake: wake for it now.
        if (Volatile.Read(ref _postedCount) > 0)
        {
            Wake();
        }
    }

    /// <summary>Stops accepting work and wakes the loop so that it exits; the caller then joins it (or is it).</summary>
    private void BeginStop()
    {
        _acceptingPosts = false;
        _stopping = true;
        _worker?.Close();
        Wake();
    }

    /// <summary>Undoes bring-up from the last stage reached. Called under the lifecycle lock once the loop has exited
    /// (or by the loop itself, as its last act), so nothing serves a request meanwhile.</summary>
    private void TearDown()
    {
        ushort domain = _options.Domain;
        if (_stage == Stage.Running)
        {
            IoreqServerMetrics.Unregister(this);
            _stage = Stage.PortsBound;
        }

        // Work of this run never runs: drop what waits (and free the worker's places).
        _acceptingPosts = false;
        _worker?.Close();
        _worker = null;
        while (_posted.TryDequeue(out _))
        {
        }

        Volatile.Write(ref _postedCount, 0);
        _completions = new ConcurrentQueue<OffLoopWorker.Item>();
        Volatile.Write(ref _loopThreadId, 0);

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

            // Under the wake gate: a device thread's Post may be interrupting this very channel right now.
            IEventChannel channel = _channel;
            lock (_wakeGate)
            {
                _channel = null;
            }

            channel.Dispose();
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
            ushort id = _id;
            LogSafely(() => Log.Stopped(_logger, domain, id));
        }

        _stage = Stage.None;
        if (_disposeRequested)
        {
            _disposed = true;
            _memory.Dispose();
        }

        // Work posted from now on would never run: refused until the server starts again.
        _acceptingPosts = false;
        _stopped?.TrySetResult(true);
    }

    private void Attempt(Action step, string what)
    {
        try
        {
            step();
        }
        catch (Exception e) when (e is HypervisorException or InvalidOperationException or ObjectDisposedException)
        {
            // Teardown goes on: every later step still has to run for the server not to leak.
            LogSafely(() => Log.TeardownStepFailed(_logger, what, e));
        }
    }

    /// <summary>Logs through the user's logger where a throwing provider must not stop what follows (teardown, the loop).</summary>
    private static void LogSafely(Action log)
    {
        try
        {
            log();
        }
        catch (Exception)
        {
            // Diagnostics are lost; the teardown or the loop is not.
        }
    }

    private void RunLoop()
    {
        try
        {
            Loop();
        }
        catch (Exception e)
        {
            // Only the hypervisor port can throw here (every user callback is contained): a server whose event channel
            // failed cannot serve any more. Torn down below rather than taking the process with it.
            LogSafely(() => Log.LoopFailed(_logger, e));
            _stopRequestedByLoop = true;
        }

        if (_stopRequestedByLoop)
        {
            ExitLoop();
        }
    }

    /// <summary>The loop's last act when it stopped itself: the teardown, unless a stopper from outside does it.</summary>
    private void ExitLoop()
    {
        // A stopper from outside holds the lifecycle lock while it joins this thread: never block on that lock here.
        while (!_stoppedFromOutside)
        {
            if (Monitor.TryEnter(_lifecycle, 1))
            {
                try
                {
                    if (!_stoppedFromOutside && _stage == Stage.Running)
                    {
                        _acceptingPosts = false;
                        TearDown();
                    }
                }
                catch (Exception e)
                {
                    // Nothing may escape the loop thread (it would end the process); Attempt already went past each
                    // failing hypervisor step, so this is a defect of the SDK's own, reported as such.
                    LogSafely(() => Log.LoopFailed(_logger, e));
                }
                finally
                {
                    Monitor.Exit(_lifecycle);
                }

                return;
            }
        }
    }

    // Entered once and left only at Stop: without this the loop would run as tier-0 code until on-stack replacement
    // swaps in a less optimised copy mid-loop; fully optimised from the first request instead. (.NET Framework, the
    // other runtime of the netstandard2.0 build, has no tiers.)
#if NETCOREAPP
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
#endif
    private void Loop()
    {
        IEventChannel channel = _channel!;
        while (!_stopping)
        {
            if (!channel.WaitPending(out uint port))
            {
                // Woken: work was posted, off-loop work finished, the ring has a backlog, or a stop.
                DrainBufferedRing();
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
            if (!_stopping)
            {
                RunPosted();
            }
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
            // Two clock reads per request (vDSO, no allocation): what lets the loop see a device holding it.
            long start = Stopwatch.GetTimestamp();
            data = _dispatcher.Dispatch(in request);
            long held = Stopwatch.GetTimestamp() - start;
            if (held > _stallTicks)
            {
                OnRequestOverrun(in request, held);
            }
        }

        // data, then state = IORESP_READY with release semantics, then the notification that wakes the vCPU. A stop
        // requested by the handler waits for this: the page and the ports are torn down only after the loop exits.
        page.WriteResponse(vcpu, data);
        _channel!.Notify(_localPorts[vcpu]);
    }

    private void DrainBufferedRing()
    {
        if (!_hasRing)
        {
            return;
        }

        // The clock is read only when there is something to serve: an empty ring (the usual case before a synchronous
        // request) costs one acquire load, as before.
        _bufferedPage.ReadPointersAcquire(out uint read, out uint write);
        if (read == write)
        {
            Statistics.LastRingDepth = 0;
            return;
        }

        long start = Stopwatch.GetTimestamp();
        bool backlog = BufferedRingConsumer.Drain(_bufferedPage, _dispatcher, Statistics, _onTimeOffset);
        long held = Stopwatch.GetTimestamp() - start;
        if (held > _stallTicks)
        {
            OnOverrun("the buffered ring's writes", held);
        }

        if (backlog)
        {
            // A backlog is left for after what waits: come back without a new event.
            _channel!.Interrupt();
        }
    }

    /// <summary>Runs the work posted so far and the completions of finished off-loop work — only what was there on
    /// entry, so a device that keeps posting cannot hold the loop here while vCPUs wait.</summary>
    private void RunPosted()
    {
        int budget = Volatile.Read(ref _postedCount);
        while (budget-- > 0 && !_stopping && _posted.TryDequeue(out Action? work))
        {
            Interlocked.Decrement(ref _postedCount);
            long start = Stopwatch.GetTimestamp();
            try
            {
                work();
            }
            catch (Exception e)
            {
                Statistics.DeviceFault++;
                ReportFault("posted work", e);
            }

            CheckCallbackOverrun(start, "posted work");
        }

        OffLoopWorker? worker = _worker;
        ConcurrentQueue<OffLoopWorker.Item> completions = _completions;
        while (!_stopping && completions.TryDequeue(out OffLoopWorker.Item? item))
        {
            RunCompletion(item);
            worker?.Release();
        }

        if (!_stopping && !_posted.IsEmpty)
        {
            // Posted meanwhile (by the work itself, say): after the vCPUs had their turn.
            _channel!.Interrupt();
        }
    }

    private void RunCompletion(OffLoopWorker.Item item)
    {
        if (item.Error is Exception error)
        {
            Statistics.DeviceFault++;
            ReportFault("off-loop work", error);
            return;
        }

        long start = Stopwatch.GetTimestamp();
        try
        {
            item.Complete();
        }
        catch (Exception e)
        {
            Statistics.DeviceFault++;
            ReportFault("an off-loop work completion", e);
        }

        CheckCallbackOverrun(start, "an off-loop work completion");
    }

    private void RaiseTimeOffsetChanged(long delta)
    {
        EventHandler<TimeOffsetEventArgs>? handlers = TimeOffsetChanged;
        if (handlers is null)
        {
            return;
        }

        var args = new TimeOffsetEventArgs(delta);

        // One by one: a handler that throws is contained like device code, and the others still run.
        foreach (Delegate handler in handlers.GetInvocationList())
        {
            long start = Stopwatch.GetTimestamp();
            try
            {
                ((EventHandler<TimeOffsetEventArgs>)handler)(this, args);
            }
            catch (Exception e)
            {
                Statistics.DeviceFault++;
                ReportFault("a TimeOffsetChanged handler", e);
            }

            CheckCallbackOverrun(start, "a TimeOffsetChanged handler");
        }
    }

    /// <summary>Wakes the loop from any thread; never touches a channel teardown is disposing.</summary>
    private void Wake()
    {
        lock (_wakeGate)
        {
            _channel?.Interrupt();
        }
    }

    private bool TryPost(Action work)
    {
        if (work is null)
        {
            throw new ArgumentNullException(nameof(work));
        }

        if (!_acceptingPosts)
        {
            Interlocked.Increment(ref Statistics.RefusedPost);
            return false;
        }

        if (Interlocked.Increment(ref _postedCount) > _options.MaxPostedWork)
        {
            Interlocked.Decrement(ref _postedCount);
            Interlocked.Increment(ref Statistics.RefusedPost);
            return false;
        }

        _posted.Enqueue(work);

        // The loop runs posted work after every request it serves: posting from it needs no wake (nor a system call).
        if (!IsLoopThread)
        {
            Wake();
        }

        return true;
    }

    private bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion)
    {
        if (work is null)
        {
            throw new ArgumentNullException(nameof(work));
        }

        if (completion is null)
        {
            throw new ArgumentNullException(nameof(completion));
        }

        OffLoopWorker? worker = Volatile.Read(ref _worker);
        if (worker is null || _stopping || !worker.TryQueue(new OffLoopWorker.Item<TResult>(work, completion)))
        {
            Interlocked.Increment(ref Statistics.RefusedWork);
            return false;
        }

        return true;
    }

    private void ThrowIfLoopThread()
    {
        if (IsLoopThread)
        {
            ThrowHelper.ThrowInvalidOperation("The server's lifecycle is not changed from its own event loop (only Stop and Dispose may be called there).");
        }
    }

    private void ThrowIfRunningOffLoop(string what)
    {
        if (_stage == Stage.Running && !IsLoopThread)
        {
            ThrowHelper.ThrowInvalidOperation($"{what} is used from the server's event-loop thread only while the server runs (a device handler, posted work or a completion); from another thread, Post the work.");
        }
    }

    private void OnDeviceFault(IDeviceModel device, Exception exception) => ReportFault(device.Name, exception);

    /// <summary>Logs a contained exception, at most once a second; the ones in between are counted and reported with the next.</summary>
    private void ReportFault(string source, Exception exception)
    {
        long now = Stopwatch.GetTimestamp();
        if (now - _lastFaultLog < Stopwatch.Frequency && _lastFaultLog != 0)
        {
            _suppressedFaults++;
            return;
        }

        _lastFaultLog = now;
        try
        {
            if (_logger.IsEnabled(LogLevel.Warning))
            {
                Log.DeviceFault(_logger, source, _suppressedFaults, exception);
            }
        }
        catch (Exception)
        {
            // The logger is user code too: a throwing provider must not take the loop down with it.
        }

        _suppressedFaults = 0;
    }

    private void CheckCallbackOverrun(long start, string what)
    {
        long held = Stopwatch.GetTimestamp() - start;
        if (held > _stallTicks)
        {
            OnOverrun(what, held);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void OnRequestOverrun(in IoRequest request, long held)
    {
        // The description is built only when it is logged (at most once a second), not for every overrun.
        if (CountOverrun())
        {
            string what = request.Type == IoreqType.PciConfig
                ? FormattableString.Invariant($"a PCI_CONFIG {(request.IsRead ? "read" : "write")} of 0x{request.Address:x}")
                : FormattableString.Invariant($"a {request.Type} {(request.IsRead ? "read" : "write")} at 0x{request.Address:x} ({request.Size} bytes)");
            LogOverrun(what, held);
        }
    }

    private void OnOverrun(string what, long held)
    {
        if (CountOverrun())
        {
            LogOverrun(what, held);
        }
    }

    /// <summary>Counts an overrun; whether to log it (at most once a second, the ones in between are counted).</summary>
    private bool CountOverrun()
    {
        Statistics.LoopOverrun++;
        long now = Stopwatch.GetTimestamp();
        if (now - _lastOverrunLog < Stopwatch.Frequency && _lastOverrunLog != 0)
        {
            _suppressedOverruns++;
            return false;
        }

        _lastOverrunLog = now;
        return true;
    }

    private void LogOverrun(string what, long held)
    {
        try
        {
            if (_logger.IsEnabled(LogLevel.Warning))
            {
                Log.LoopOverrun(_logger, what, held * 1000.0 / Stopwatch.Frequency, _options.LoopStallThreshold.TotalMilliseconds, _suppressedOverruns);
            }
        }
        catch (Exception)
        {
            // As in ReportFault: the logger is user code.
        }

        _suppressedOverruns = 0;
    }

    /// <summary>
    /// Maps (or moves) a region into an address space. The space is normally the region's own kind; a host bridge's
    /// PIO aperture maps a port region into MMIO space, where the device still sees port-relative offsets.
    /// </summary>
    internal void MapRegion(DeviceRegion region, RegionKind space, ulong address)
    {
        ThrowIfRunningOffLoop("Region mapping");
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
        ThrowIfRunningOffLoop("Region mapping");
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

    private sealed class DeviceContext : IDeviceContext, ILoopAffinity
    {
        private readonly IoreqServer _server;

        public DeviceContext(IoreqServer server)
        {
            _server = server;
            Memory = new LoopGuestMemory(server);
        }

        public IGuestMemory Memory { get; }

        public void MapRegion(DeviceRegion region, ulong address) => _server.MapRegion(region, region.Kind, address);

        public void UnmapRegion(DeviceRegion region) => _server.UnmapRegion(region);

        public void Post(Action work)
        {
            if (!_server.TryPost(work) && _server._acceptingPosts)
            {
                ThrowHelper.ThrowInvalidOperation($"The server's posted-work queue is full ({_server._options.MaxPostedWork} items); use TryPost to handle a full queue.");
            }
        }

        public bool TryPost(Action work) => _server.TryPost(work);

        public void ThrowIfOffLoop(string what) => _server.ThrowIfRunningOffLoop(what);

        public bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion) =>
            _server.TryRunOffLoop(work, completion);
    }

    /// <summary>
    /// Guest memory as devices see it: the loop's map cache, refused from any other thread. The cache is what the loop
    /// flushes on INVALIDATE; used concurrently from another thread, a mapping made after the flush would outlive the
    /// guest's physmap change (a leaked foreign mapping on Xen) and one evicted meanwhile would be a use after unmap.
    /// </summary>
    private sealed class LoopGuestMemory : IGuestMemory
    {
        private readonly IoreqServer _server;

        public LoopGuestMemory(IoreqServer server) => _server = server;

        public bool TryRead(ulong address, Span<byte> destination)
        {
            ThrowIfOffLoop();
            return _server._memory.TryRead(address, destination);
        }

        public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
        {
            ThrowIfOffLoop();
            return _server._memory.TryWrite(address, source);
        }

        private void ThrowIfOffLoop()
        {
            if (!_server.IsLoopThread)
            {
                ThrowHelper.ThrowInvalidOperation("Guest memory is reached from the server's event-loop thread only, while it runs (a device handler, posted work or an off-loop completion). Copy in the completion of TryRunOffLoop, or Post the access.");
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "ioreq server {Server} of domain {Domain} running: {Vcpus} vCPUs, buffered ring {Mode}")]
        public static partial void Started(ILogger logger, ushort domain, ushort server, int vcpus, BufferedIoreqMode mode);

        [LoggerMessage(2, LogLevel.Information, "ioreq server {Server} of domain {Domain} destroyed")]
        public static partial void Stopped(ILogger logger, ushort domain, ushort server);

        [LoggerMessage(3, LogLevel.Warning, "{Source} threw on the event loop (contained; a request it served was answered, reads with all-ones; {Suppressed} earlier faults not reported)")]
        public static partial void DeviceFault(ILogger logger, string source, long suppressed, Exception exception);

        [LoggerMessage(4, LogLevel.Warning, "teardown step '{Step}' failed; continuing")]
        public static partial void TeardownStepFailed(ILogger logger, string step, Exception exception);

        [LoggerMessage(5, LogLevel.Warning, "{What} held the event loop for {Milliseconds:F1} ms (threshold {Threshold} ms; every vCPU of the server waited; {Suppressed} earlier overruns not reported): long work belongs off the loop (IDeviceContext.TryRunOffLoop)")]
        public static partial void LoopOverrun(ILogger logger, string what, double milliseconds, double threshold, long suppressed);

        [LoggerMessage(6, LogLevel.Critical, "the event loop failed and the server is torn down")]
        public static partial void LoopFailed(ILogger logger, Exception exception);
    }
}
