using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace IoreqSdk.Xenstore;

/// <summary>
/// A connection's watch events, bounded: the producer (libxenstore's watch fd, or the simulated daemon) never blocks and
/// never grows memory; when the queue is full the events are dropped and the reader is told with
/// <see cref="XenStoreWatchEvent.Overflow"/>. One reader at a time. Not a hot path: a lock is the simple, correct choice.
/// </summary>
internal sealed class WatchEventQueue
{
    /// <summary>The default bound: far more than a toolstack writes for a burst of devices.</summary>
    public const int DefaultCapacity = 1024;

    private readonly object _gate = new();
    private readonly Queue<XenStoreWatchEvent> _events = new();
    private readonly int _capacity;
    private bool _overflowed;
    private bool _completed;
    private TaskCompletionSource<bool>? _waiter;

    public WatchEventQueue(int capacity = DefaultCapacity) => _capacity = capacity;

    /// <summary>Events dropped because the queue was full, over its life.</summary>
    public long Dropped { get; private set; }

    /// <summary>Queues an event (or counts it dropped); never blocks.</summary>
    public void Post(XenStoreWatchEvent watchEvent)
    {
        TaskCompletionSource<bool>? waiter;
        lock (_gate)
        {
            if (_completed)
            {
                return;
            }

            if (_events.Count >= _capacity)
            {
                _overflowed = true;
                Dropped++;
            }
            else
            {
                _events.Enqueue(watchEvent);
            }

            waiter = _waiter;
            _waiter = null;
        }

        // Outside the lock: the waiter's continuation runs asynchronously anyway, but nothing runs under our lock.
        waiter?.TrySetResult(true);
    }

    /// <summary>No more events: a waiting or later reader gets <see cref="ObjectDisposedException"/>.</summary>
    public void Complete()
    {
        TaskCompletionSource<bool>? waiter;
        lock (_gate)
        {
            _completed = true;
            waiter = _waiter;
            _waiter = null;
        }

        waiter?.TrySetResult(true);
    }

    public async Task<XenStoreWatchEvent> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Task wait;
            lock (_gate)
            {
                if (_overflowed)
                {
                    // The reader rescans everything, which covers what is still queued too.
                    _overflowed = false;
                    _events.Clear();
                    return XenStoreWatchEvent.Overflow;
                }

                if (_events.Count > 0)
                {
                    return _events.Dequeue();
                }

                if (_completed)
                {
                    throw new ObjectDisposedException(nameof(IXenStore), "The xenstore connection was closed.");
                }

                _waiter ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }

            if (cancellationToken.CanBeCanceled)
            {
                var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                using (cancellationToken.Register(() => cancelled.TrySetResult(true)))
                {
                    await Task.WhenAny(wait, cancelled.Task).ConfigureAwait(false);
                }
            }
            else
            {
                await wait.ConfigureAwait(false);
            }
        }
    }
}
