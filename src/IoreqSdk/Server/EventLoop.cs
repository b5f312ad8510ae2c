using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Dispatch;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Server;

/// <summary>
/// The server's event loop: its ports, the wait for events, the slot protocol of each synchronous request, the
/// buffered ring's drain, posted work with its bound, and the completions of off-loop work. The server owns the
/// thread and the lifecycle; it binds the ports after enabling, runs <see cref="Run"/> on the loop thread, and
/// releases the ports at teardown. With more than one loop thread (<see cref="IoreqServerOptions.LoopThreads"/>) it
/// also owns the <see cref="RequestLoop"/>s: it binds their vCPUs' ports on their handles, starts them with the run,
/// stops and joins them when it exits, and serves what they hand it as it serves its own vCPUs.
/// </summary>
internal sealed class EventLoop
{
    private readonly IoreqServer _server;
    private readonly IoreqServerStatistics _statistics;
    private readonly IoDispatcher _dispatcher;
    private readonly GuestMemoryCache _memory;
    private readonly LoopDiagnostics _diagnostics;
    private readonly long _stallMilliseconds;
    private readonly LoopWork _work;
    private readonly RequestStallWatch _stallWatch;
    private readonly object _wakeGate = new();
    private readonly Action<long> _onTimeOffset;

    // Busy polling (IoreqServerOptions.BusyPoll): how long to spin after a request, in Stopwatch ticks (0: never).
    private readonly long _pollTicks;

    private readonly RequestLoop[] _requestLoops;

    // The vCPUs a request loop handed over (their slots still READY), one mark per slot, and how many are marked. A
    // request loop sets a mark, then counts it (a full barrier), then wakes this loop; this loop zeroes the count before
    // it looks at the marks, and clears a mark after it
    // stored INPROCESS in the slot and before the answer, so the request loop never serves the slot twice nor ignores
    // the vCPU's next request.
    private readonly int[] _handedOff = new int[SharedIoPage.SlotCount];
    private int _handedOffCount;

    private SharedIoPage _ioreqPage;
    private BufferedIoPage _bufferedPage;
    private bool _hasRing;
    private IEventChannel? _channel;
    private uint[] _localPorts = [];
    private IEventChannel?[] _channelOfVcpu = [];
    private int[] _vcpuOfPort = [];
    private int _openRequestLoops;
    private int _loops = 1;
    private uint _bufferedLocalPort = uint.MaxValue;
    private volatile bool _stopping;
    private int _loopThreadId;

    public EventLoop(IoreqServer server, IoreqServerStatistics statistics, IoDispatcher dispatcher, GuestMemoryCache memory, LoopDiagnostics diagnostics, ILogger logger, IoreqServerOptions options)
    {
        TimeSpan busyPoll = options.BusyPoll;
        TimeSpan stallThreshold = options.LoopStallThreshold;
        int maxPostedWork = options.MaxPostedWork;
        // At least one tick when on at all: a positive TimeSpan below the Stopwatch's resolution still polls.
        _pollTicks = busyPoll <= TimeSpan.Zero ? 0 : Math.Max(1, (long)(busyPoll.Ticks * ((double)Stopwatch.Frequency / TimeSpan.TicksPerSecond)));
        _server = server;
        _statistics = statistics;
        _dispatcher = dispatcher;
        _memory = memory;
        _diagnostics = diagnostics;
        _stallMilliseconds = diagnostics.StallMilliseconds;
        _work = new LoopWork(this, statistics, diagnostics, maxPostedWork);
        _stallWatch = new RequestStallWatch(stallThreshold);
        _onTimeOffset = RaiseTimeOffsetChanged;

        // Built once, with their counters (which the statistics add up across runs); a run starts those it has vCPUs for.
        _requestLoops = new RequestLoop[options.LoopThreads - 1];
        var loopStatistics = new IoreqServerStatistics[_requestLoops.Length];
        for (int i = 0; i < _requestLoops.Length; i++)
        {
            _requestLoops[i] = new RequestLoop(this, dispatcher, logger, stallThreshold, _pollTicks, FormattableString.Invariant($"request loop {i + 1}"));
            loopStatistics[i] = _requestLoops[i].Statistics;
        }

        statistics.Loops = loopStatistics;
    }

    /// <summary>Whether the caller runs on the event loop (the only thread that may touch devices and guest memory).</summary>
    public bool IsLoopThread => Environment.CurrentManagedThreadId == Volatile.Read(ref _loopThreadId);

    /// <summary>Posted work and the completions of off-loop work.</summary>
    public LoopWork Work => _work;

    public bool IsStopping => _stopping;

    /// <summary>Whether the caller is one of the request loops' threads (a concurrent region's handler runs there).</summary>
    public bool IsRequestLoopThread
    {
        get
        {
            foreach (RequestLoop loop in _requestLoops)
            {
                if (loop.IsCurrentThread)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Whether a request loop stopped the server (asked for from a concurrent handler, or its channel failed).</summary>
    public bool StoppedForRequestLoop { get; private set; }

    /// <summary>Takes the run's shared pages (mapped, not yet enabled).</summary>
    public void UsePages(SharedIoPage ioreqPage, BufferedIoPage bufferedPage, bool hasRing)
    {
        _ioreqPage = ioreqPage;
        _bufferedPage = bufferedPage;
        _hasRing = hasRing;
    }

    public void OpenChannel(IHypervisor hypervisor) => _channel = hypervisor.OpenEventChannel();

    /// <summary>
    /// Binds a port for each vCPU's slot (and the buffered ring's) on the channel opened after enabling: vCPU
    /// <c>n</c>'s on loop <c>n % loops</c>'s handle, where loops is the options' loop threads but at most the vCPUs
    /// (each request loop opens its own handle here).
    /// </summary>
    public void BindPorts(IHypervisor hypervisor, ushort domain, ushort server, int vcpus)
    {
        IEventChannel channel = _channel!;
        int loops = Math.Min(_requestLoops.Length + 1, vcpus);
        _loops = loops;
        for (int i = 0; i < loops - 1; i++)
        {
            // Counted once opened: ReleasePorts closes exactly these, whatever fails after.
            _requestLoops[i].Open(_ioreqPage, _bufferedPage, _hasRing, hypervisor.OpenEventChannel());
            _openRequestLoops = i + 1;
        }

        _localPorts = new uint[vcpus];
        _channelOfVcpu = new IEventChannel?[vcpus];
        uint highest = 0;
        for (int vcpu = 0; vcpu < vcpus; vcpu++)
        {
            // Enabling was a hypercall (a full barrier): Xen's stores of vp_eport are visible to this plain read.
            uint remote = _ioreqPage.Slot(vcpu).VcpuEventPort;
            int owner = vcpu % loops;
            IEventChannel handle = owner == 0 ? channel : _requestLoops[owner - 1].Channel!;
            _localPorts[vcpu] = handle.BindInterdomain(domain, remote);
            _channelOfVcpu[vcpu] = handle;
            if (owner == 0)
            {
                highest = Math.Max(highest, _localPorts[vcpu]);
            }
            else
            {
                _requestLoops[owner - 1].AddVcpu(vcpu, _localPorts[vcpu]);
            }
        }

        if (_hasRing)
        {
            _bufferedLocalPort = channel.BindInterdomain(domain, hypervisor.GetBufferedIoreqPort(domain, server));
            highest = Math.Max(highest, _bufferedLocalPort);
        }

        _vcpuOfPort = new int[highest + 1];
        _vcpuOfPort.AsSpan().Fill(-1);
        for (int vcpu = 0; vcpu < vcpus; vcpu += loops)
        {
            _vcpuOfPort[_localPorts[vcpu]] = vcpu;
        }
    }

    /// <summary>Starts the request loops this run has (before the event loop's thread starts).</summary>
    public void StartRequestLoops(string name)
    {
        for (int i = 0; i < _openRequestLoops; i++)
        {
            _requestLoops[i].Start(FormattableString.Invariant($"{name} loop {i + 1}"));
        }
    }

    /// <summary>Stops the request loops and waits for them (the stop flag is set): when the event loop exits, and at
    /// teardown (a loop that never started, or one the event loop already joined, returns at once).</summary>
    private void StopRequestLoops()
    {
        for (int i = 0; i < _openRequestLoops; i++)
        {
            _requestLoops[i].Wake();
        }

        for (int i = 0; i < _openRequestLoops; i++)
        {
            _requestLoops[i].Join();
        }
    }

    /// <summary>Unbinds every port and disposes of the channel; each unbind goes through <paramref name="attempt"/>.</summary>
    public void ReleasePorts(Action<Action, string> attempt)
    {
        if (_channel is null)
        {
            return;
        }

        for (int vcpu = 0; vcpu < _localPorts.Length; vcpu++)
        {
            // Only what was bound (a failed bring-up may have bound some of the vCPUs), on the handle it was bound on.
            if (_channelOfVcpu[vcpu] is IEventChannel handle)
            {
                uint port = _localPorts[vcpu];
                attempt(() => handle.Unbind(port), "unbind");
            }
        }

        // The request loops were joined (EndRun comes first): nothing waits on their handles any more.
        for (int i = 0; i < _openRequestLoops; i++)
        {
            _requestLoops[i].Close();
        }

        _openRequestLoops = 0;

        if (_bufferedLocalPort != uint.MaxValue)
        {
            attempt(() => _channel.Unbind(_bufferedLocalPort), "unbind");
        }

        // Under the wake gate: a device thread's Post may be interrupting this very channel right now.
        IEventChannel channel = _channel;
        lock (_wakeGate)
        {
            _channel = null;
        }

        channel.Dispose();
        _localPorts = [];
        _channelOfVcpu = [];
        _bufferedLocalPort = uint.MaxValue;
    }

    /// <summary>Readies a run: a fresh off-loop worker and completion queue, posts accepted, not stopping.</summary>
    public void Prepare(int maxOffLoopWork, string workerName)
    {
        _work.Prepare(maxOffLoopWork, workerName);
        _stopping = false;
        StoppedForRequestLoop = false;
        Array.Clear(_handedOff, 0, _handedOff.Length);
        _handedOffCount = 0;
    }

    /// <summary>Teardown: the run's waiting work is dropped, and no thread is the loop's any more.</summary>
    public void EndRun()
    {
        // Normally joined when the event loop exited already; here too for a run whose event loop never started.
        _stopping = true;
        StopRequestLoops();
        _work.Drop();
        Volatile.Write(ref _loopThreadId, 0);
    }

    /// <summary>Known before the first request: the loop-only services check it from the start.</summary>
    public void SetLoopThread(int managedThreadId) => Volatile.Write(ref _loopThreadId, managedThreadId);

    /// <summary>Work posted before the start (a device's OnAttached, say) found no channel to wake: wake for it now.</summary>
    public void WakeIfPosted()
    {
        if (_work.HasPosted)
        {
            Wake();
        }
    }

    /// <summary>Asks the loop to exit after the request it serves (a stop from the loop itself).</summary>
    public void RequestStop() => _stopping = true;

    /// <summary>A request loop asks for the stop (its handler called Stop, or its channel failed): the event loop
    /// exits and tears the server down, as for a stop it asked for itself.</summary>
    public void StopForRequestLoop()
    {
        StoppedForRequestLoop = true;
        _stopping = true;
        Wake();
    }

    /// <summary>Whether a request loop handed <paramref name="vcpu"/>'s request over and this loop has not yet taken it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsHandedOff(int vcpu) => Volatile.Read(ref _handedOff[vcpu]) != 0;

    /// <summary>
    /// From a request loop: <paramref name="vcpu"/>'s request (its slot left READY) is for this loop to serve. Woken
    /// without the wake gate: the request loops are joined before teardown disposes of this loop's channel.
    /// </summary>
    public void HandOff(int vcpu)
    {
        Volatile.Write(ref _handedOff[vcpu], 1);

        // A full barrier: this loop, seeing the count, sees the mark.
        Interlocked.Increment(ref _handedOffCount);
        _channel!.Interrupt();
    }

    /// <summary>Stops accepting work and wakes the loop so that it exits; the caller then joins it (or is it).</summary>
    public void BeginStop()
    {
        _work.RefusePosts();
        _stopping = true;
        _work.CloseWorker();
        Wake();
    }

    /// <summary>Serves until stopped, on the loop thread; the stall sampler watches its requests meanwhile.</summary>
    public void Run()
    {
        // Watched from the first request to the loop's exit, whatever ends it (a stop, or a failing event channel):
        // once unwatched, the sampler never writes to this watch again after its look under way, and it holds no
        // native resource, calls no user code and never keeps the process alive (StallSampler).
        StallSampler.Watch(_stallWatch);
        try
        {
            Serving();
        }
        finally
        {
            StallSampler.Unwatch(_stallWatch);

            // Whatever ended the event loop ends the run: the request loops go before the teardown that follows.
            _stopping = true;
            StopRequestLoops();
        }
    }

    // Entered once and left only at Stop: without this the loop would run as tier-0 code until on-stack replacement
    // swaps in a less optimised copy mid-loop; fully optimised from the first request instead. (.NET Framework, the
    // other runtime of the netstandard2.0 build, has no tiers.)
#if NETCOREAPP
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
#endif
    private void Serving()
    {
        IEventChannel channel = _channel!;
        while (!_stopping)
        {
            if (!channel.WaitPending(out uint port))
            {
                // Woken: work was posted, off-loop work finished, the ring has a backlog, a request loop handed a
                // request over, or a stop.
                DrainBufferedRing();
                if (Volatile.Read(ref _handedOffCount) != 0)
                {
                    // With busy polling, hand-offs start a spin as this loop's own requests do: a request loop's vCPUs
                    // come back to this loop for every request their devices do not declare concurrent.
                    int handedOff = ServeHandedOff();
                    if (handedOff != 0 && _pollTicks != 0 && !_stopping)
                    {
                        Poll();
                    }
                }

                RunPosted();
                continue;
            }

            if (_pollTicks != 0)
            {
                ServePolling(channel, port);
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

            int vcpu = VcpuOf(port);
            if (vcpu < 0)
            {
                _statistics.SpuriousEvent++;
                continue;
            }

            Serve(vcpu, channel, handedOff: false);
            if (!_stopping)
            {
                RunPosted();
            }
        }
    }

    /// <summary>Serves the requests the request loops handed over, each answered on its own loop's port.</summary>
    /// <returns>How many it served.</returns>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ServeHandedOff()
    {
        int served = 0;
        // Reset before the look: a request loop's mark counted after it is served now or at the wake that follows its
        // count, and a count whose mark this look served costs one look that finds nothing.
        Interlocked.Exchange(ref _handedOffCount, 0);
        int[] handedOff = _handedOff;
        int vcpus = _localPorts.Length;
        for (int vcpu = 0; vcpu < vcpus && !_stopping; vcpu++)
        {
            if (Volatile.Read(ref handedOff[vcpu]) != 0)
            {
                // Buffered writes before it were the reason for some: drained first, as for this loop's own.
                DrainBufferedRing();
                Serve(vcpu, _channelOfVcpu[vcpu]!, handedOff: true);
                served++;
            }
        }

        return served;
    }

    /// <summary>The vCPU whose slot a local port signals, or -1 (the buffered ring's port, or one this loop never bound).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int VcpuOf(uint port)
    {
        int[] vcpuOfPort = _vcpuOfPort;
        return port < (uint)vcpuOfPort.Length ? vcpuOfPort[port] : -1;
    }

    /// <summary>
    /// An event with busy polling on: its port stays masked (the kernel masked it when it delivered it), its request is
    /// served, and then the loop spins on its slots (<see cref="Poll"/>) until the guest has been quiet for the poll
    /// time; only then is the port unmasked and the loop sleeps. A notification Xen sends to a masked port only sets it
    /// pending: the requests of this vCPU found by spinning cost this domain no upcall, and the loop no wait, read or
    /// unmask on the event channel (each still gets its answer's notify). Another vCPU's port is unmasked while the loop
    /// spins, so its first notification is delivered (and the kernel masks that port until the loop reads it, after the
    /// spin). The notifications are delivered once the ports are unmasked, find their requests served, and are counted
    /// (<see cref="IoreqServerStatistics.PolledEvents"/>) without spinning again.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ServePolling(IEventChannel channel, uint port)
    {
        DrainBufferedRing();
        bool served = false;
        if (port != _bufferedLocalPort)
        {
            int vcpu = VcpuOf(port);
            if (vcpu < 0)
            {
                _statistics.SpuriousEvent++;
            }
            else if (_ioreqPage.ReadStateAcquire(vcpu) == IoreqState.Ready)
            {
                Serve(vcpu, channel, handedOff: false);
                served = true;
            }
            else
            {
                _statistics.PolledEvent++;
            }
        }

        if (!_stopping)
        {
            RunPosted();
        }

        // Not after a stop, which a handler or the posted work may just have asked for: nothing is served after it.
        if (served && !_stopping)
        {
            Poll();

            // Work the spin left (posted meanwhile, completions beyond a pass's bound) wakes the loop after it sleeps.
            RunPosted();
        }

        // Before sleeping: a port left masked would never wake the loop again. One with a notification pending is
        // delivered at once, and the wait returns it.
        channel.Unmask(port);
    }

    /// <summary>
    /// Spins on this loop's vCPUs' slots (and the request loops' hand-offs) and serves what becomes ready, until no
    /// request has come for the poll time or the loop is stopping (after which it serves nothing). The buffered ring,
    /// posted work and completions are looked at every few turns, so that a guest that keeps the loop polling cannot
    /// starve them; the clock is read only while nothing comes, every few dozen turns, never per request.
    /// </summary>
    // Optimised from its first entry, as Serving is: a spin entered once per burst would otherwise run its first bursts
    // as tier-0 code and then as on-stack-replacement copies, a slower spin for the first thirty bursts.
#if NETCOREAPP
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
#endif
    private void Poll()
    {
        // This loop's slots: vCPU 0, loops, 2 * loops, ... (every slot with one loop); the request loops spin on theirs.
        IEventChannel channel = _channel!;
        SharedIoPage page = _ioreqPage;
        int vcpus = _localPorts.Length;
        int loops = _loops;
        long pollTicks = _pollTicks;
        long idleSince = 0;
        int idleTurns = 0;
        while (!_stopping)
        {
            bool found = false;

            // No pause instruction in the spin, as in the C floor it is measured against (benchmarks/native/
            // slot_roundtrip.c): the first look after the guest's store is what the vCPU waits for.
            for (int vcpu = 0; vcpu < vcpus; vcpu += loops)
            {
                // Acquire, as in Serve (which loads it again): the request's fields are visible once READY is.
                if (page.ReadStateAcquire(vcpu) == IoreqState.Ready)
                {
                    // Buffered writes the guest made before this request are older: drained first, as after an event.
                    DrainBufferedRing();
                    Serve(vcpu, channel, handedOff: false);
                    _statistics.PolledRequest++;
                    found = true;
                    if (_stopping)
                    {
                        return;
                    }
                }
            }

            // What the spinning request loops handed over (one load a turn): their vCPUs wait on this loop, whose wake
            // the spin does not read.
            if (Volatile.Read(ref _handedOffCount) != 0)
            {
                int handedOff = ServeHandedOff();
                _statistics.PolledRequest += handedOff;
                found |= handedOff != 0;
                if (_stopping)
                {
                    return;
                }
            }

            // Posted work and completions run here without the wake-up RunPosted asks for when some are left: the spin
            // comes back to them within 16 turns, and ServePolling asks for it once the spin is over.
            if (found)
            {
                _ = _work.RunPending();
                idleTurns = 0;
                continue;
            }

            if ((++idleTurns & 15) != 0)
            {
                continue;
            }

            // Every 16 idle turns: the ring (buffered writes with no synchronous request after them), posted work and
            // completions; every 64, the clock. A stop is looked at every turn (one load).
            DrainBufferedRing();
            _ = _work.RunPending();
            if ((idleTurns & 63) == 0)
            {
                long now = Stopwatch.GetTimestamp();
                if (idleTurns == 64)
                {
                    idleSince = now;
                }
                else if (now - idleSince >= pollTicks)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Serves a vCPU's request and answers it on <paramref name="channel"/>, the handle its port is bound on
    /// (a request loop's, for a request it handed over: <paramref name="handedOff"/>, whose mark is cleared here).</summary>
    private void Serve(int vcpu, IEventChannel channel, bool handedOff)
    {
        SharedIoPage page = _ioreqPage;

        // Acquire: the request's fields, published before READY, are visible to the copy below.
        if (page.ReadStateAcquire(vcpu) != IoreqState.Ready)
        {
            _statistics.SpuriousEvent++;
            if (handedOff)
            {
                Volatile.Write(ref _handedOff[vcpu], 0);
            }

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
            _statistics.Invalidate++;
            data = request.Data;
        }
        else
        {
            // No clock here (RequestStallWatch says why): the stall sampler flags a handler still running after the
            // threshold, and the overrun is counted and logged here, on the loop, once it returns.
            long sequence = _stallWatch.Enter();
            try
            {
                data = _dispatcher.Dispatch(in request);
            }
            catch (Exception e)
            {
                // The device a single-element access reached threw (IoDispatcher.Dispatch says why the handler is
                // here): counted, reported, answered as unclaimed; the vCPU is answered below either way.
                data = _dispatcher.ContainFault(in request, e);
            }

            if (_stallWatch.Exit(sequence))
            {
                _diagnostics.OnRequestOverrun(_stallWatch, in request, sequence);
            }
        }

        if (handedOff)
        {
            // After INPROCESS (so the request loop cannot take this request again) and before the answer (so it takes
            // the vCPU's next one): a release store, ordered after the INPROCESS store.
            Volatile.Write(ref _handedOff[vcpu], 0);
        }

        // data, then state = IORESP_READY with release semantics, then the notification that wakes the vCPU. A stop
        // requested by the handler waits for this: the page and the ports are torn down only after the loop exits.
        page.WriteResponse(vcpu, data);
        channel.Notify(_localPorts[vcpu]);
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
            _statistics.LastRingDepth = 0;
            return;
        }

        long start = LoopClock.Now;
        bool backlog = BufferedRingConsumer.Drain(_bufferedPage, _dispatcher, _statistics, _onTimeOffset);
        long held = LoopClock.Elapsed(start, LoopClock.Now);
        if (held > _stallMilliseconds)
        {
            _diagnostics.OnOverrun("the buffered ring's writes", held);
        }

        if (backlog)
        {
            // A backlog is left for after what waits: come back without a new event.
            _channel!.Interrupt();
        }
    }

    private void RunPosted()
    {
        if (_work.RunPending())
        {
            // Posted meanwhile (by the work itself, say): after the vCPUs had their turn.
            _channel!.Interrupt();
        }
    }

    private void RaiseTimeOffsetChanged(long delta)
    {
        EventHandler<TimeOffsetEventArgs>? handlers = _server.TimeOffsetHandlers;
        if (handlers is null)
        {
            return;
        }

        var args = new TimeOffsetEventArgs(delta);

        // One by one: a handler that throws is contained like device code, and the others still run.
        foreach (Delegate handler in handlers.GetInvocationList())
        {
            long start = LoopClock.Now;
            try
            {
                ((EventHandler<TimeOffsetEventArgs>)handler)(_server, args);
            }
            catch (Exception e)
            {
                _statistics.Requests.DeviceFault++;
                _diagnostics.ReportFault("a TimeOffsetChanged handler", e);
            }

            _diagnostics.CheckCallbackOverrun(start, "a TimeOffsetChanged handler");
        }
    }

    /// <summary>Wakes the loop from any thread; never touches a channel teardown is disposing.</summary>
    public void Wake()
    {
        lock (_wakeGate)
        {
            _channel?.Interrupt();
        }
    }
}
