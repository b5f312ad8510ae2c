using System;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Memory;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Server;

/// <summary>
/// Who starts, stops and tears down a server, from which thread: the lifecycle lock, the loop thread, and the stop
/// protocol between a stopper outside the loop (it joins the loop, then tears down) and a stop the loop asked for
/// itself (the loop tears down as its last act, unless a stopper from outside does). <see cref="ServerStages"/> does
/// the hypervisor's side of each; the server's public members delegate here.
/// </summary>
internal sealed class ServerLifecycle
{
    private readonly IoreqServer _server;
    private readonly ServerStages _stages;
    private readonly EventLoop _eventLoop;
    private readonly GuestMemoryCache _memory;
    private readonly ILogger _logger;
    private readonly ushort _domain;
    private readonly int _maxOffLoopWork;
    private readonly object _gate = new();

    private Thread? _loop;
    private volatile bool _stopRequestedByLoop;
    private volatile bool _stoppedFromOutside;
    private volatile bool _disposeRequested;
    private bool _disposed;

    // Completed when a run's teardown is done, whoever did it; continuations never run on the tearing-down thread.
    private TaskCompletionSource<bool>? _stopped;

    public ServerLifecycle(IoreqServer server, ServerStages stages, EventLoop eventLoop, GuestMemoryCache memory, ILogger logger, IoreqServerOptions options)
    {
        _server = server;
        _stages = stages;
        _eventLoop = eventLoop;
        _memory = memory;
        _logger = logger;
        _domain = options.Domain;
        _maxOffLoopWork = options.MaxOffLoopWork;
    }

    /// <summary>The lifecycle lock: what changes the server's configuration (its devices, its PCI functions) takes it too.</summary>
    public object Gate => _gate;

    /// <summary>Completes when the current run is torn down (set by <see cref="Start"/>).</summary>
    public Task Stopped => _stopped!.Task;

    /// <summary>Brings the server up and starts its loop; a failure tears down what was built and rethrows.</summary>
    public void Start()
    {
        ThrowIfLoopThread();
        lock (_gate)
        {
            if (_disposed)
            {
                ThrowHelper.ThrowObjectDisposed(nameof(IoreqServer));
            }

            if (_stages.Current != ServerStages.Stage.None)
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

    /// <summary>From another thread: stops the loop, joins it and tears down. From the loop: asks for the stop only.</summary>
    public void Stop()
    {
        if (_eventLoop.IsLoopThread)
        {
            // Tearing down here would unmap the page and clear the ports the request being served still needs.
            _stopRequestedByLoop = true;
            _eventLoop.RequestStop();
            return;
        }

        if (_eventLoop.IsRequestLoopThread)
        {
            // A concurrent region's handler: the event loop joins this thread before it tears down, so joining the
            // event loop here would never end. Asked for only, as from the event loop.
            _eventLoop.StopForRequestLoop();
            return;
        }

        lock (_gate)
        {
            if (_stages.IsRunning)
            {
                // The loop never waits for this lock while its stopper waits for it (see ExitLoop): join under it.
                _stoppedFromOutside = true;
                _eventLoop.BeginStop();
                _loop!.Join();
            }

            TearDown();
        }
    }

    /// <summary>As <see cref="Stop"/>, then the guest-memory cache is released for good (by the loop's teardown, from the loop).</summary>
    public void Dispose()
    {
        if (_eventLoop.IsLoopThread || _eventLoop.IsRequestLoopThread)
        {
            _disposeRequested = true;
            Stop();
            return;
        }

        Stop();
        lock (_gate)
        {
            _disposed = true;
            _memory.Dispose();
        }
    }

    public void ThrowIfLoopThread()
    {
        if (_eventLoop.IsLoopThread || _eventLoop.IsRequestLoopThread)
        {
            ThrowHelper.ThrowInvalidOperation("The server's lifecycle is not changed from its own event loop (only Stop and Dispose may be called there).");
        }
    }

    private void BringUp()
    {
        _stages.BringUp();
        ushort id = _stages.Id;

        _eventLoop.Prepare(_maxOffLoopWork, $"ioreq d{_domain} s{id} worker");
        _stopped = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _stopRequestedByLoop = false;
        _stoppedFromOutside = false;
        _loop = new Thread(RunLoop) { IsBackground = true, Name = $"ioreq d{_domain} s{id}" };

        // Known before the first request: the loop-only services check it from the start.
        _eventLoop.SetLoopThread(_loop.ManagedThreadId);
        _stages.MarkRunning();
        IoreqServerMetrics.Register(_server);
        _eventLoop.StartRequestLoops(_loop.Name!);
        _loop.Start();

        // Work posted before the start (a device's OnAttached, say) found no channel to wake: wake for it now.
        _eventLoop.WakeIfPosted();
    }

    /// <summary>Undoes bring-up from the last stage reached. Called under the lifecycle lock once the loop has exited
    /// (or by the loop itself, as its last act), so nothing serves a request meanwhile.</summary>
    private void TearDown()
    {
        if (_stages.IsRunning)
        {
            IoreqServerMetrics.Unregister(_server);
        }

        _stages.TearDown();
        if (_disposeRequested)
        {
            _disposed = true;
            _memory.Dispose();
        }

        // Work posted from now on would never run: refused until the server starts again.
        _eventLoop.Work.RefusePosts();
        _stopped?.TrySetResult(true);
    }

    private void RunLoop()
    {
        try
        {
            _eventLoop.Run();
        }
        catch (Exception e)
        {
            // Only the hypervisor port can throw here (every user callback is contained): a server whose event channel
            // failed cannot serve any more. Torn down below rather than taking the process with it.
            ServerLog.Safely(() => ServerLog.LoopFailed(_logger, LoopDiagnostics.EventLoopName, e));
            _stopRequestedByLoop = true;
        }

        if (_stopRequestedByLoop || _eventLoop.StoppedForRequestLoop)
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
            if (Monitor.TryEnter(_gate, 1))
            {
                try
                {
                    if (!_stoppedFromOutside && _stages.IsRunning)
                    {
                        _eventLoop.Work.RefusePosts();
                        TearDown();
                    }
                }
                catch (Exception e)
                {
                    // Nothing may escape the loop thread (it would end the process); Attempt already went past each
                    // failing hypervisor step, so this is a defect of the SDK's own, reported as such.
                    ServerLog.Safely(() => ServerLog.LoopFailed(_logger, LoopDiagnostics.EventLoopName, e));
                }
                finally
                {
                    Monitor.Exit(_gate);
                }

                return;
            }
        }
    }
}
