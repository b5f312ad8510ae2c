using System;
using System.Collections.Generic;
using System.Threading;
using IoreqSdk.Devices;

namespace IoreqSdk.Server;

/// <summary>
/// Runs devices' long work away from the event loop, on threads of its own (QEMU's edu runs its factorial on a worker
/// thread the same way), and hands each finished item back to the loop for its completion. Bounded: at most
/// <c>capacity</c> items are queued, running or waiting for their completion at once, so a guest that keeps asking
/// for work gets refusals, not an ever-growing queue. The server's worker has one thread, which isolates guests: a
/// guest's long work delays only its own server's work, never the thread pool or another server; a device that needs
/// parallel blocking I/O gets a worker of its own (<see cref="IDeviceContext.CreateOffLoopWorker"/>).
/// </summary>
internal sealed class OffLoopWorker : IDisposable
{
    private readonly object _gate = new();
    private readonly Queue<OffLoopWork> _queue = new();
    private readonly int _capacity;
    private readonly string _threadName;
    private readonly Action<OffLoopWork> _finished;
    private readonly CancellationTokenSource _cancel = new();
    private readonly int _threadCount;
    private Thread[]? _threads;
    private int _liveThreads;
    private int _outstanding;
    private bool _closing;
    private bool _closed;

    /// <param name="capacity">Items queued, running or awaiting completion, at most.</param>
    /// <param name="threadName">The worker threads' name.</param>
    /// <param name="threadCount">How many threads run items (at once).</param>
    /// <param name="finished">Called on the worker thread with each finished item, under the worker's lock (so that a
    /// close either comes before the hand-over, and the item is freed, or after it, and the item is in the loop's
    /// queue for the teardown to drop); it must bring the item to the loop, which calls <see cref="Release"/> and then
    /// runs the item's completion. Quick, and never calling back into the worker.</param>
    public OffLoopWorker(int capacity, string threadName, int threadCount, Action<OffLoopWork> finished)
    {
        _capacity = capacity;
        _threadCount = threadCount;
        _threadName = threadName;
        _finished = finished;
    }

    /// <summary>Queues an item the caller has claimed; <see langword="false"/> when the bound is reached or the worker was closed (the caller frees the item).</summary>
    public bool TryQueue(OffLoopWork item)
    {
        lock (_gate)
        {
            // Volatile: Release decrements without the lock; a decrement not yet seen only refuses an item early.
            if (_closing || Volatile.Read(ref _outstanding) >= _capacity)
            {
                return false;
            }

            Interlocked.Increment(ref _outstanding);
            item.Worker = this;
            _queue.Enqueue(item);
            if (_threads is null)
            {
                // Started on first use: a server whose devices never offload work has no extra thread.
                _threads = new Thread[_threadCount];
                for (int i = 0; i < _threads.Length; i++)
                {
                    _threads[i] = new Thread(Run) { IsBackground = true, Name = _threadName };
                    _threads[i].Start();
                    _liveThreads++;
                }
            }

            Monitor.Pulse(_gate);
            return true;
        }
    }

    /// <summary>Frees an item's place once its completion ran or was dropped.</summary>
    public void Release() =>
        // Without the lock: the loop frees a place per completion, and the count is all a place is. Interlocked, as
        // the increment under the lock races with it.
        Interlocked.Decrement(ref _outstanding);

    /// <summary>
    /// Refuses further items, cancels the token passed to running work and drops queued items. Does not wait for the
    /// running item: close may be called from that very item's thread or from the loop, and the item's completion is
    /// dropped either way.
    /// </summary>
    public void Close()
    {
        lock (_gate)
        {
            if (_closing)
            {
                return;
            }

            _closing = true;
        }

        // Only the first closer gets here, and the worker thread disposes the source only once _closed is set below.
        try
        {
            _cancel.Cancel();
        }
        catch (AggregateException)
        {
            // A callback the work registered on its token threw. It runs on the closer's thread — the loop, or whoever
            // stops the server — and must not stop the teardown.
        }
        lock (_gate)
        {
            _closed = true;

            // Queued items never run: free them, so a device's pooled item can be used again (a restart of the server).
            while (_queue.Count != 0)
            {
                _queue.Dequeue().Drop();
            }

            Monitor.PulseAll(_gate);
            if (_threads is null)
            {
                _cancel.Dispose();
            }
        }
    }

    /// <summary>As <see cref="Close"/>; the token source goes with the worker thread (or now, when it never started).</summary>
    public void Dispose() => Close();

    private void Run()
    {
        CancellationToken token = _cancel.Token;
        while (true)
        {
            OffLoopWork item;
            lock (_gate)
            {
                while (_queue.Count == 0 && !_closed)
                {
                    Monitor.Wait(_gate);
                }

                if (_closed)
                {
                    // The last thread out: work that read the token has finished (each thread runs one item at a
                    // time, and every thread has left its item): nobody uses it any more.
                    if (--_liveThreads == 0)
                    {
                        _cancel.Dispose();
                    }

                    return;
                }

                item = _queue.Dequeue();
            }

            item.Run(token);
            lock (_gate)
            {
                if (_closing)
                {
                    // Its completion would be dropped: free the item now (the teardown never sees it).
                    item.Drop();
                    continue;
                }

                try
                {
                    _finished(item);
                }
                catch (Exception)
                {
                    // Handing the item back failed (the server's callback is not expected to throw): nothing may escape
                    // this thread, which would end the process. The item's place stays taken: the bound errs on the safe side.
                }
            }
        }
    }
}
