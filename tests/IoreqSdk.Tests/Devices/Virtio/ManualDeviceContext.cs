using System;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Memory;
using IoreqSdk.Server;

namespace IoreqSdk.Tests.Devices.Virtio;

/// <summary>
/// A device context whose off-loop work and posted work run only when the test says so, on the test's thread — so a
/// test decides when I/O finishes, in which order, and whether a reset comes first. Bounded as the server's is.
/// </summary>
internal sealed class ManualDeviceContext : IDeviceContext
{
    private readonly OffLoopWork[] _pending;
    private readonly Action[] _posted;
    private int _pendingCount;
    private int _postedCount;

    public long RunNumber => 1;

    public ManualDeviceContext(IGuestMemory memory, int capacity = 64, int maxPosted = 64)
    {
        Memory = memory;
        _pending = new OffLoopWork[capacity];
        _posted = new Action[maxPosted];
    }

    public IGuestMemory Memory { get; }

    /// <summary>Items queued and not yet completed.</summary>
    public int Pending => _pendingCount;

    public int Refused { get; private set; }

    /// <summary>When false, every offload is refused (a busy or stopped server).</summary>
    public bool Accepting { get; set; } = true;

    public int PostedCount => Volatile.Read(ref _postedCount);

    public void MapRegion(DeviceRegion region, ulong address) => throw new NotSupportedException();

    public void UnmapRegion(DeviceRegion region) => throw new NotSupportedException();

    public void Post(Action work)
    {
        if (!TryPost(work))
        {
            throw new InvalidOperationException("posted-work queue full");
        }
    }

    public bool TryPost(Action work)
    {
        lock (_posted)
        {
            if (_postedCount == _posted.Length)
            {
                return false;
            }

            _posted[_postedCount++] = work;
            return true;
        }
    }

    public bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion) =>
        TryRunOffLoop(new DelegateOffLoopWork<TResult>(work, completion));

    public bool TryRunOffLoop(OffLoopWork work)
    {
        if (!work.TryClaim())
        {
            throw new InvalidOperationException("in flight");
        }

        if (!Accepting || _pendingCount == _pending.Length)
        {
            work.Free();
            Refused++;
            return false;
        }

        _pending[_pendingCount++] = work;
        return true;
    }

    /// <summary>Workers the device created: their items join this context's single manual queue.</summary>
    public int WorkersCreated { get; private set; }

    public IOffLoopWorker CreateOffLoopWorker(string name, int threadCount, int capacity)
    {
        WorkersCreated++;
        return new Worker(this, threadCount, capacity);
    }

    /// <summary>Executes and completes everything queued, and what completions queue, until nothing is left.</summary>
    /// <returns>The items completed.</returns>
    public int RunUntilIdle(int limit = 1_000_000)
    {
        int done = 0;
        while (_pendingCount > 0 && done < limit)
        {
            OffLoopWork item = _pending[0];
            Array.Copy(_pending, 1, _pending, 0, _pendingCount - 1);
            _pending[--_pendingCount] = null!;
            Finish(item);
            done++;
        }

        return done;
    }

    /// <summary>Executes every queued item, then completes them in reverse order (the I/O finished out of order).</summary>
    public void RunInReverse()
    {
        int count = _pendingCount;
        var items = new OffLoopWork[count];
        Array.Copy(_pending, items, count);
        Array.Clear(_pending, 0, count);
        _pendingCount = 0;
        foreach (OffLoopWork item in items)
        {
            item.Run(CancellationToken.None);
        }

        for (int i = count - 1; i >= 0; i--)
        {
            Complete(items[i]);
        }
    }

    /// <summary>Takes the queued items without running them (a test runs them on a thread of its own, or drops them).</summary>
    public OffLoopWork[] TakePending()
    {
        var items = new OffLoopWork[_pendingCount];
        Array.Copy(_pending, items, _pendingCount);
        Array.Clear(_pending, 0, _pendingCount);
        _pendingCount = 0;
        return items;
    }

    /// <summary>Executes every queued item now (the I/O happens), leaving the completions for later.</summary>
    public OffLoopWork[] ExecuteAllLeaveCompletions()
    {
        int count = _pendingCount;
        var items = new OffLoopWork[count];
        Array.Copy(_pending, items, count);
        Array.Clear(_pending, 0, count);
        _pendingCount = 0;
        foreach (OffLoopWork item in items)
        {
            item.Run(CancellationToken.None);
        }

        return items;
    }

    public static void Complete(OffLoopWork item)
    {
        Exception? error = item.Error;
        item.Free();
        if (error is null)
        {
            item.RunComplete();
        }
        else
        {
            item.RunFail(error);
        }
    }

    /// <summary>Runs the work posted so far (and what it posts), as the loop would.</summary>
    public int RunPosted()
    {
        int ran = 0;
        while (true)
        {
            Action? work = null;
            lock (_posted)
            {
                if (_postedCount > 0)
                {
                    work = _posted[0];
                    Array.Copy(_posted, 1, _posted, 0, _postedCount - 1);
                    _posted[--_postedCount] = null!;
                }
            }

            if (work is null)
            {
                return ran;
            }

            work();
            ran++;
        }
    }

    private sealed class Worker : IOffLoopWorker
    {
        private readonly ManualDeviceContext _context;

        public Worker(ManualDeviceContext context, int threadCount, int capacity)
        {
            _context = context;
            ThreadCount = threadCount;
            Capacity = capacity;
        }

        public int ThreadCount { get; }

        public int Capacity { get; }

        public bool TryRun(OffLoopWork work) => _context.TryRunOffLoop(work);
    }

    private static void Finish(OffLoopWork item)
    {
        item.Run(CancellationToken.None);
        Complete(item);
    }
}
