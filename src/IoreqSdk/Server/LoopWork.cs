using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Server;

/// <summary>
/// The work the event loop runs besides requests: work posted from any thread (bounded by
/// <see cref="IoreqServerOptions.MaxPostedWork"/>) and the completions of off-loop work (bounded by the worker). The
/// loop runs what waits after every request it serves and when woken.
/// </summary>
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "A run's worker is closed (and dropped) by the server's teardown, which Dispose ends in.")]
internal sealed class LoopWork
{
    // How many off-loop completions one pass of the loop runs at most before it serves the vCPUs again.
    private const int CompletionsPerPass = 64;

    private readonly EventLoop _loop;
    private readonly IoreqServerStatistics _statistics;
    private readonly LoopDiagnostics _diagnostics;
    private readonly int _maxPostedWork;
    private readonly ConcurrentQueue<Action> _posted = new();
    private int _postedCount;
    private long _run;
    private volatile bool _acceptingPosts = true;
    private readonly List<DeviceOffLoopWorker> _deviceWorkers = new();
    private OffLoopWorker? _worker;
    private Action<OffLoopWork>? _finished;
    private ConcurrentQueue<OffLoopWork> _completions = new();

    public LoopWork(EventLoop loop, IoreqServerStatistics statistics, LoopDiagnostics diagnostics, int maxPostedWork)
    {
        _loop = loop;
        _statistics = statistics;
        _diagnostics = diagnostics;
        _maxPostedWork = maxPostedWork;
    }

    /// <summary>Whether posted work is accepted now (false before a start and from the stop on).</summary>
    public bool AcceptingPosts => _acceptingPosts;

    public int MaxPostedWork => _maxPostedWork;

    /// <summary>Whether work was posted (and not yet run).</summary>
    public bool HasPosted => Volatile.Read(ref _postedCount) > 0;

    /// <summary>Readies a run: a fresh off-loop worker and completion queue, posts accepted.</summary>
    /// <summary>Which run this is: counted up at every start (Prepare), read from any thread.</summary>
    public long Run => Interlocked.Read(ref _run);

    public void Prepare(int maxOffLoopWork, string workerName)
    {
        Interlocked.Increment(ref _run);
        var completions = new ConcurrentQueue<OffLoopWork>();
        _completions = completions;
        EventLoop loop = _loop;
        Action<OffLoopWork> finished = item =>
        {
            // A late item of a run that ended lands in that run's queue, which nobody reads any more.
            completions.Enqueue(item);
            try
            {
                loop.Wake();
            }
            catch (Exception e) when (e is HypervisorException or ObjectDisposedException)
            {
                // The channel failed: the loop finds the completion at its next wake, if it has one.
            }
        };
        _worker = new OffLoopWorker(maxOffLoopWork, workerName, threadCount: 1, finished);
        lock (_deviceWorkers)
        {
            _finished = finished;
            foreach (DeviceOffLoopWorker worker in _deviceWorkers)
            {
                worker.Open(finished);
            }
        }

        _acceptingPosts = true;
    }

    /// <summary>A device's own worker, open while the server runs (now, if it does).</summary>
    public IOffLoopWorker CreateWorker(string name, int threadCount, int capacity)
    {
        if (threadCount < 1 || threadCount > 64)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(threadCount), "A device's worker has 1 to 64 threads.");
        }

        if (capacity < 1 || capacity > 4096)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(capacity), "A device's worker holds 1 to 4096 items.");
        }

        var worker = new DeviceOffLoopWorker(this, name ?? "device worker", threadCount, capacity);
        lock (_deviceWorkers)
        {
            _deviceWorkers.Add(worker);
            if (_finished is not null)
            {
                worker.Open(_finished);
            }
        }

        return worker;
    }

    /// <summary>Work posted from now on would never run: refused until the server starts again.</summary>
    public void RefusePosts() => _acceptingPosts = false;

    public void CloseWorker()
    {
        _worker?.Close();
        CloseDeviceWorkers();
    }

    /// <summary>Teardown: work of this run never runs; drop what waits (and free the worker's places).</summary>
    public void Drop()
    {
        _acceptingPosts = false;
        _worker?.Close();
        _worker = null;
        CloseDeviceWorkers();
        while (_posted.TryDequeue(out _))
        {
        }

        Volatile.Write(ref _postedCount, 0);
        // The worker is closed: nothing more reaches this queue (it hands items over under its lock, checking for the
        // close). What waits here never completes: free it, so a device's pooled items are usable again.
        ConcurrentQueue<OffLoopWork> completions = _completions;
        _completions = new ConcurrentQueue<OffLoopWork>();
        while (completions.TryDequeue(out OffLoopWork? item))
        {
            item.Drop();
        }
    }

    /// <summary>Runs the work posted so far and the completions of finished off-loop work — only what was there on
    /// entry, so a device that keeps posting cannot hold the loop here while vCPUs wait.</summary>
    /// <returns>Whether work was posted meanwhile (by the work itself, say) or completions are left beyond the pass's
    /// bound: the loop comes back for them after the vCPUs had their turn.</returns>
    public bool RunPending()
    {
        // After every request, nearly always with nothing to run: one read of the count and one of the completions
        // queue, then back to the vCPUs. Volatile: a post from another thread increments the count before it enqueues
        // and wakes the loop, so a count read as 0 here is a post whose wake is still to come.
        int budget = Volatile.Read(ref _postedCount);
        if (budget == 0 && _completions.IsEmpty)
        {
            return false;
        }

        while (budget-- > 0 && !_loop.IsStopping && _posted.TryDequeue(out Action? work))
        {
            Interlocked.Decrement(ref _postedCount);
            long start = LoopClock.Now;
            try
            {
                work();
            }
            catch (Exception e)
            {
                _statistics.Requests.DeviceFault++;
                _diagnostics.ReportFault("posted work", e);
            }

            _diagnostics.CheckCallbackOverrun(start, "posted work");
        }

        // Completions are bounded per pass too: workers can refill the queue as fast as the loop empties it (a large
        // request's next step queued by its own completion, several device threads reading from the page cache), and
        // the vCPUs must get their turn in between. What is left is taken after them.
        ConcurrentQueue<OffLoopWork> completions = _completions;
        int completionBudget = CompletionsPerPass;
        while (completionBudget-- > 0 && !_loop.IsStopping && completions.TryDequeue(out OffLoopWork? item))
        {
            // Place and item are freed before the completion runs, so that the completion can queue its item again
            // (the next step of a request) within the bound. The place is the worker's that ran it (the server's or
            // a device's).
            item.Worker?.Release();
            item.Free();
            RunCompletion(item);
        }

        return !_loop.IsStopping && (!_posted.IsEmpty || !completions.IsEmpty);
    }

    public bool TryPost(Action work)
    {
        if (work is null)
        {
            throw new ArgumentNullException(nameof(work));
        }

        if (!_acceptingPosts)
        {
            Interlocked.Increment(ref _statistics.RefusedPost);
            return false;
        }

        if (Interlocked.Increment(ref _postedCount) > _maxPostedWork)
        {
            Interlocked.Decrement(ref _postedCount);
            Interlocked.Increment(ref _statistics.RefusedPost);
            return false;
        }

        _posted.Enqueue(work);

        // The loop runs posted work after every request it serves: posting from it needs no wake (nor a system call).
        if (!_loop.IsLoopThread)
        {
            _loop.Wake();
        }

        return true;
    }

    public bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion)
    {
        if (work is null)
        {
            throw new ArgumentNullException(nameof(work));
        }

        if (completion is null)
        {
            throw new ArgumentNullException(nameof(completion));
        }

        return TryRunOffLoop(new DelegateOffLoopWork<TResult>(work, completion));
    }

    public bool TryRunOffLoop(OffLoopWork work)
    {
        return TryQueue(Volatile.Read(ref _worker), work);
    }

    /// <summary>Queues a claimed item on <paramref name="worker"/> (the server's or a device's), or frees and counts a refusal.</summary>
    public bool TryQueue(OffLoopWorker? worker, OffLoopWork work)
    {
        if (work is null)
        {
            throw new ArgumentNullException(nameof(work));
        }

        if (!work.TryClaim())
        {
            ThrowHelper.ThrowInvalidOperation("The off-loop work item is still in flight; queue it again once its completion has begun.");
        }

        if (worker is null || _loop.IsStopping || !worker.TryQueue(work))
        {
            work.Free();
            Interlocked.Increment(ref _statistics.RefusedWork);
            return false;
        }

        return true;
    }

    private void CloseDeviceWorkers()
    {
        lock (_deviceWorkers)
        {
            _finished = null;
            foreach (DeviceOffLoopWorker worker in _deviceWorkers)
            {
                worker.Close();
            }
        }
    }

    private void RunCompletion(OffLoopWork item)
    {
        Exception? error = item.Error;
        if (error is not null)
        {
            _statistics.Requests.DeviceFault++;
            _diagnostics.ReportFault("off-loop work", error);
        }

        long start = LoopClock.Now;
        try
        {
            if (error is null)
            {
                item.RunComplete();
            }
            else
            {
                item.RunFail(error);
            }
        }
        catch (Exception e)
        {
            _statistics.Requests.DeviceFault++;
            _diagnostics.ReportFault("an off-loop work completion", e);
        }

        _diagnostics.CheckCallbackOverrun(start, "an off-loop work completion");
    }
}
