using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Dispatch;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;

namespace IoreqSdk.Server;

/// <summary>
/// The server's event loop: its ports, the wait for events, the slot protocol of each synchronous request, the
/// buffered ring's drain, posted work with its bound, and the completions of off-loop work. The server owns the
/// thread and the lifecycle; it binds the ports after enabling, runs <see cref="Run"/> on the loop thread, and
/// releases the ports at teardown.
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

    private SharedIoPage _ioreqPage;
    private BufferedIoPage _bufferedPage;
    private bool _hasRing;
    private IEventChannel? _channel;
    private uint[] _localPorts = [];
    private int[] _vcpuOfPort = [];
    private uint _bufferedLocalPort = uint.MaxValue;
    private volatile bool _stopping;
    private int _loopThreadId;

    public EventLoop(IoreqServer server, IoreqServerStatistics statistics, IoDispatcher dispatcher, GuestMemoryCache memory, LoopDiagnostics diagnostics, int maxPostedWork, TimeSpan stallThreshold, TimeSpan busyPoll)
    {
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
    }

    /// <summary>Whether the caller runs on the event loop (the only thread that may touch devices and guest memory).</summary>
    public bool IsLoopThread => Environment.CurrentManagedThreadId == Volatile.Read(ref _loopThreadId);

    /// <summary>Posted work and the completions of off-loop work.</summary>
    public LoopWork Work => _work;

    public bool IsStopping => _stopping;

    /// <summary>Takes the run's shared pages (mapped, not yet enabled).</summary>
    public void UsePages(SharedIoPage ioreqPage, BufferedIoPage bufferedPage, bool hasRing)
    {
        _ioreqPage = ioreqPage;
        _bufferedPage = bufferedPage;
        _hasRing = hasRing;
    }

    public void OpenChannel(IHypervisor hypervisor) => _channel = hypervisor.OpenEventChannel();

    /// <summary>Binds a port for each vCPU's slot (and the buffered ring's) on the channel opened after enabling.</summary>
    public void BindPorts(IHypervisor hypervisor, ushort domain, ushort server, int vcpus)
    {
        IEventChannel channel = _channel!;
        _localPorts = new uint[vcpus];
        uint highest = 0;
        for (int vcpu = 0; vcpu < vcpus; vcpu++)
        {
            // Enabling was a hypercall (a full barrier): Xen's stores of vp_eport are visible to this plain read.
            uint remote = _ioreqPage.Slot(vcpu).VcpuEventPort;
            _localPorts[vcpu] = channel.BindInterdomain(domain, remote);
            highest = Math.Max(highest, _localPorts[vcpu]);
        }

        if (_hasRing)
        {
            _bufferedLocalPort = channel.BindInterdomain(domain, hypervisor.GetBufferedIoreqPort(domain, server));
            highest = Math.Max(highest, _bufferedLocalPort);
        }

        _vcpuOfPort = new int[highest + 1];
        _vcpuOfPort.AsSpan().Fill(-1);
        for (int vcpu = 0; vcpu < vcpus; vcpu++)
        {
            _vcpuOfPort[_localPorts[vcpu]] = vcpu;
        }
    }

    /// <summary>Unbinds every port and disposes of the channel; each unbind goes through <paramref name="attempt"/>.</summary>
    public void ReleasePorts(Action<Action, string> attempt)
    {
        if (_channel is null)
        {
            return;
        }

        foreach (uint port in _localPorts)
        {
            attempt(() => _channel.Unbind(port), "unbind");
        }

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
        _bufferedLocalPort = uint.MaxValue;
    }

    /// <summary>Readies a run: a fresh off-loop worker and completion queue, posts accepted, not stopping.</summary>
    public void Prepare(int maxOffLoopWork, string workerName)
    {
        _work.Prepare(maxOffLoopWork, workerName);
        _stopping = false;
    }

    /// <summary>Teardown: the run's waiting work is dropped, and no thread is the loop's any more.</summary>
    public void EndRun()
    {
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
                // Woken: work was posted, off-loop work finished, the ring has a backlog, or a stop.
                DrainBufferedRing();
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

            Serve(vcpu);
            if (!_stopping)
            {
                RunPosted();
            }
        }
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
    /// served, and then the loop spins on every slot (<see cref="Poll"/>) until the guest has been quiet for the poll
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
                Serve(vcpu);
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
    /// Spins on every vCPU's slot and serves what becomes ready, until no request has come for the poll time or the
    /// loop is stopping (after which it serves nothing). The buffered ring, posted work and completions are looked at
    /// every few turns, so that a guest that keeps the loop polling cannot starve them; the clock is read only while
    /// nothing comes, every few dozen turns, never per request.
    /// </summary>
    // Optimised from its first entry, as Serving is: a spin entered once per burst would otherwise run its first bursts
    // as tier-0 code and then as on-stack-replacement copies, a slower spin for the first thirty bursts.
#if NETCOREAPP
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
#endif
    private void Poll()
    {
        SharedIoPage page = _ioreqPage;
        int vcpus = _localPorts.Length;
        long pollTicks = _pollTicks;
        long idleSince = 0;
        int idleTurns = 0;
        while (!_stopping)
        {
            bool found = false;

            // No pause instruction in the spin, as in the C floor it is measured against (benchmarks/native/
            // slot_roundtrip.c): the first look after the guest's store is what the vCPU waits for.
            for (int vcpu = 0; vcpu < vcpus; vcpu++)
            {
                // Acquire, as in Serve (which loads it again): the request's fields are visible once READY is.
                if (page.ReadStateAcquire(vcpu) == IoreqState.Ready)
                {
                    // Buffered writes the guest made before this request are older: drained first, as after an event.
                    DrainBufferedRing();
                    Serve(vcpu);
                    _statistics.PolledRequest++;
                    found = true;
                    if (_stopping)
                    {
                        return;
                    }
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

    private void Serve(int vcpu)
    {
        SharedIoPage page = _ioreqPage;

        // Acquire: the request's fields, published before READY, are visible to the copy below.
        if (page.ReadStateAcquire(vcpu) != IoreqState.Ready)
        {
            _statistics.SpuriousEvent++;
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
                ReportRequestOverrun(in request, sequence);
            }
        }

        // data, then state = IORESP_READY with release semantics, then the notification that wakes the vCPU. A stop
        // requested by the handler waits for this: the page and the ports are torn down only after the loop exits.
        page.WriteResponse(vcpu, data);
        _channel!.Notify(_localPorts[vcpu]);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReportRequestOverrun(in IoRequest request, long sequence)
    {
        if (_stallWatch.TakeOverrun(sequence, out long held))
        {
            _diagnostics.OnRequestOverrun(in request, held);
        }
        else
        {
            // Flagged just as that handler returned: the sampler's flag was seen at this later exit.
            _diagnostics.OnOverrun("an earlier request's handler", held);
        }
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
