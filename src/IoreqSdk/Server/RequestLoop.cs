using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Hypervisor;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Server;

/// <summary>
/// One of a server's extra loop threads (<see cref="IoreqServerOptions.LoopThreads"/>): it waits on an event-channel
/// handle of its own for its vCPUs' ports, serves a request to a concurrent region itself and hands every other
/// request to the event loop (<see cref="EventLoop.HandOff"/>), leaving its slot READY. It never touches guest memory,
/// posted work or anything else of the event loop's, and of the buffered ring it only reads the pointers; it writes only its own counters
/// (<see cref="Statistics"/>) and diagnostics. Built once with its server; bound, started and stopped with each run.
/// </summary>
internal sealed class RequestLoop
{
    private readonly EventLoop _eventLoop;
    private readonly IoDispatcher _dispatcher;
    private readonly LoopDiagnostics _diagnostics;
    private readonly RequestStallWatch _stallWatch;
    private readonly ILogger _logger;
    private readonly string _name;

    // Busy polling (IoreqServerOptions.BusyPoll), in Stopwatch ticks (0: never), as the event loop's.
    private readonly long _pollTicks;
    private SharedIoPage _page;
    private BufferedIoPage _ring;
    private bool _hasRing;
    private IEventChannel? _channel;
    private int[] _vcpuOfPort = [];

    // This run's vCPUs and their local ports, in the order bound (what a spin looks at).
    private int[] _vcpus = [];
    private uint[] _ports = [];
    private Thread? _thread;
    private int _threadId;

    public RequestLoop(EventLoop eventLoop, IoDispatcher dispatcher, ILogger logger, TimeSpan stallThreshold, long pollTicks, string name)
    {
        _name = name;
        _pollTicks = pollTicks;
        _eventLoop = eventLoop;
        _dispatcher = dispatcher;
        _logger = logger;
        Statistics = new IoreqServerStatistics();
        _diagnostics = new LoopDiagnostics(logger, Statistics, stallThreshold, name);
        _stallWatch = new RequestStallWatch(stallThreshold);
    }

    /// <summary>This loop's counters, which the server's statistics add to the event loop's (kept across runs).</summary>
    public IoreqServerStatistics Statistics { get; }

    /// <summary>This run's event-channel handle; the event loop binds this loop's vCPUs' ports on it.</summary>
    public IEventChannel? Channel => _channel;

    /// <summary>Whether the caller is this loop's thread (while it runs).</summary>
    public bool IsCurrentThread => Environment.CurrentManagedThreadId == Volatile.Read(ref _threadId);

    /// <summary>Readies a run: the shared pages and a fresh handle, no vCPUs yet.</summary>
    public void Open(SharedIoPage page, BufferedIoPage ring, bool hasRing, IEventChannel channel)
    {
        _page = page;
        _ring = ring;
        _hasRing = hasRing;
        _channel = channel;
        _vcpuOfPort = [];
        _vcpus = [];
        _ports = [];
    }

    /// <summary>Routes a local port of this loop's handle to the vCPU whose slot it signals.</summary>
    public void AddVcpu(int vcpu, uint localPort)
    {
        if (localPort >= (uint)_vcpuOfPort.Length)
        {
            int old = _vcpuOfPort.Length;
            Array.Resize(ref _vcpuOfPort, (int)Math.Max(localPort + 1, (uint)old * 2));
            _vcpuOfPort.AsSpan(old).Fill(-1);
        }

        _vcpuOfPort[localPort] = vcpu;
        int count = _vcpus.Length;
        Array.Resize(ref _vcpus, count + 1);
        Array.Resize(ref _ports, count + 1);
        _vcpus[count] = vcpu;
        _ports[count] = localPort;
    }

    /// <summary>Starts the thread (after every port is bound, before the event loop's own thread starts).</summary>
    public void Start(string name)
    {
        var thread = new Thread(RunThread) { IsBackground = true, Name = name };

        // Known before the first request (a concurrent handler's Stop asks who it runs on); kept only once started,
        // so that a failed start's teardown never joins a thread that never ran.
        Volatile.Write(ref _threadId, thread.ManagedThreadId);
        try
        {
            thread.Start();
        }
        catch
        {
            Volatile.Write(ref _threadId, 0);
            throw;
        }

        _thread = thread;
    }

    /// <summary>Wakes the loop (to see a stop); from any thread while its handle is open.</summary>
    public void Wake() => _channel?.Interrupt();

    /// <summary>Waits for the thread to exit (the stop was asked for and the loop woken); never from the loop itself.</summary>
    public void Join()
    {
        Thread? thread = _thread;
        if (thread is not null && thread.ManagedThreadId != Environment.CurrentManagedThreadId)
        {
            thread.Join();
        }

        _thread = null;
        Volatile.Write(ref _threadId, 0);
    }

    /// <summary>Disposes of this run's handle (its ports unbound already, the thread joined).</summary>
    public void Close()
    {
        IEventChannel? channel = _channel;
        _channel = null;
        _vcpuOfPort = [];
        _vcpus = [];
        _ports = [];
        channel?.Dispose();
    }

    private void RunThread()
    {
        RequestLoopThread.Enter();

        // Watched as the event loop is (EventLoop.Run): a concurrent handler that holds this loop is flagged too.
        StallSampler.Watch(_stallWatch);
        try
        {
            Serving();
        }
        catch (Exception e)
        {
            // Only the hypervisor port can throw here (every device call is contained): this loop's vCPUs cannot be
            // served any more, so the server stops, as when the event loop's own channel fails.
            ServerLog.Safely(() => ServerLog.LoopFailed(_logger, _name, e));
            _eventLoop.StopForRequestLoop();
        }
        finally
        {
            StallSampler.Unwatch(_stallWatch);
        }
    }

#if NETCOREAPP
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
#endif
    private void Serving()
    {
        IEventChannel channel = _channel!;
        while (!_eventLoop.IsStopping)
        {
            if (!channel.WaitPending(out uint port))
            {
                // Woken for a stop (nothing else wakes a request loop).
                continue;
            }

            if (_pollTicks != 0)
            {
                ServePolling(channel, port);
                continue;
            }

            // Unmasked before serving, as the event loop does: the vCPU's next request cannot come before its answer.
            channel.Unmask(port);
            int[] vcpuOfPort = _vcpuOfPort;
            int vcpu = port < (uint)vcpuOfPort.Length ? vcpuOfPort[port] : -1;
            if (vcpu < 0)
            {
                Statistics.SpuriousEvent++;
                continue;
            }

            _ = Serve(vcpu, port, channel);
        }
    }

    /// <summary>
    /// An event with busy polling on, as the event loop's (EventLoop.ServePolling): its port stays masked while its
    /// request is served and this loop spins on its own vCPUs' slots (<see cref="Poll"/>), then it is unmasked.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ServePolling(IEventChannel channel, uint port)
    {
        int[] vcpuOfPort = _vcpuOfPort;
        int vcpu = port < (uint)vcpuOfPort.Length ? vcpuOfPort[port] : -1;
        if (vcpu < 0)
        {
            Statistics.SpuriousEvent++;
        }
        else if (!_eventLoop.IsHandedOff(vcpu) && _page.ReadStateAcquire(vcpu) == IoreqState.Ready)
        {
            _ = Serve(vcpu, port, channel);
            if (!_eventLoop.IsStopping)
            {
                Poll(channel);
            }
        }
        else
        {
            // Its request was found by a spin (served, or with the event loop), or it is a stray event.
            Statistics.PolledEvent++;
        }

        // Before sleeping: a port left masked would never wake this loop again.
        channel.Unmask(port);
    }

    /// <summary>
    /// Spins on this loop's vCPUs' slots, serving (or handing over) each request that becomes READY, until none has come
    /// for the poll time or the server is stopping. A slot with the event loop is skipped until it has answered it.
    /// </summary>
#if NETCOREAPP
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
#endif
    private void Poll(IEventChannel channel)
    {
        SharedIoPage page = _page;
        int[] vcpus = _vcpus;
        uint[] ports = _ports;
        long pollTicks = _pollTicks;
        long idleSince = 0;
        int idleTurns = 0;
        while (!_eventLoop.IsStopping)
        {
            bool found = false;
            for (int i = 0; i < vcpus.Length; i++)
            {
                // The mark first, then the state (acquire), as in Serve: a cleared mark is never followed by a stale READY.
                int vcpu = vcpus[i];
                if (!_eventLoop.IsHandedOff(vcpu) && page.ReadStateAcquire(vcpu) == IoreqState.Ready)
                {
                    // Counted where it is served: a request handed over is counted by the event loop, if its spin finds it.
                    if (Serve(vcpu, ports[i], channel))
                    {
                        Statistics.PolledRequest++;
                    }

                    found = true;
                    if (_eventLoop.IsStopping)
                    {
                        // Nothing is served after a stop, as on the event loop's spin.
                        return;
                    }
                }
            }

            if (found)
            {
                idleTurns = 0;
                continue;
            }

            // The clock every 64 idle turns, never per request (as the event loop's spin).
            if ((++idleTurns & 63) != 0)
            {
                continue;
            }

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

    /// <returns>Whether this loop served it (false: handed over, or nothing to serve).</returns>
    private bool Serve(int vcpu, uint port, IEventChannel channel)
    {
        SharedIoPage page = _page;

        // A slot handed to the event loop stays READY until the event loop takes it: an event meanwhile (a spurious
        // one; Xen sends one per request) must not serve it a second time. Acquire, then the state: the event loop
        // clears the mark only after its INPROCESS store, so a cleared mark is never followed by a stale READY here.
        if (_eventLoop.IsHandedOff(vcpu) || page.ReadStateAcquire(vcpu) != IoreqState.Ready)
        {
            Statistics.SpuriousEvent++;
            return false;
        }

        IoRequest request = page.ReadRequest(vcpu);

        // Buffered writes the vCPU made before this request are older than it: while any wait (the event loop drains
        // them, and it advances the read pointer only after each entry is served), the request goes after them.
        if (BufferedWritesWait() || !_dispatcher.TryRouteConcurrent(in request, out DeviceRegion region, out ulong offset))
        {
            Statistics.HandedOffRequest++;
            _eventLoop.HandOff(vcpu);
            return false;
        }

        page.WriteStateRelease(vcpu, IoreqState.InProcess);
        long sequence = _stallWatch.Enter();
        ulong data;
        try
        {
            data = IoDispatcher.ServeConcurrent(region, offset, in request, Statistics.Requests);
        }
        catch (Exception e)
        {
            data = ContainFault(region, in request, e);
        }

        if (_stallWatch.Exit(sequence))
        {
            _diagnostics.OnRequestOverrun(_stallWatch, in request, sequence);
        }

        // As on the event loop: data, then IORESP_READY with release semantics, then the notification.
        page.WriteResponse(vcpu, data);
        channel.Notify(port);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool BufferedWritesWait()
    {
        if (!_hasRing)
        {
            return false;
        }

        _ring.ReadPointersAcquire(out uint read, out uint write);
        return read != write;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong ContainFault(DeviceRegion region, in IoRequest request, Exception exception)
    {
        // As IoDispatcher.ContainFault, into this loop's counters and diagnostics.
        Statistics.Requests.DeviceFault++;
        _diagnostics.ReportDeviceFault(region.Device, exception);
        return request.IsRead ? IoDispatcher.Mask((int)request.Size) : request.Data;
    }
}
