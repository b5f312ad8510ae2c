using System;
using System.Threading;

namespace IoreqSdk.Devices;

/// <summary>
/// Bytes the host sends a device's guest (a terminal's keystrokes, a pipe): a bounded ring any thread fills and the
/// device drains on its loop, with at most one delivery scheduled at a time however often the host sends. The
/// library's serial devices use it: the PCI 16550 (into its receive FIFO) and virtio-console (into receive buffers).
/// </summary>
/// <remarks>
/// Every change is made under one lock; <see cref="Count"/> is read without it only to skip the lock when nothing waits
/// (a stale value delays a delivery to the device's next look, never loses bytes). Only the device's loop takes bytes
/// out, so what <see cref="Peek"/> saw is still there for <see cref="Consume"/>.
/// </remarks>
internal sealed class HostByteQueue
{
    private readonly byte[] _ring;
    private readonly object _gate = new();
    private int _head;
    private int _count;
    private bool _scheduled;
    private long _scheduledRun;

    public HostByteQueue(int capacity) => _ring = new byte[capacity];

    /// <summary>How many bytes it holds at most.</summary>
    public int Capacity => _ring.Length;

    /// <summary>The bytes waiting (read without the lock: to skip work when none wait).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Takes as many of <paramref name="bytes"/> as fit, from any thread.</summary>
    /// <param name="bytes">The bytes (copied).</param>
    /// <param name="run">The server run the delivery would be posted in (<see cref="IDeviceContext.RunNumber"/>; 0 before
    /// the device joins a server): a delivery scheduled in an earlier run was dropped at its stop and is not waited for.</param>
    /// <param name="schedule">Whether the caller must schedule a delivery now: none is scheduled in this run. If it cannot, it calls <see cref="Unschedule"/>.</param>
    /// <returns>How many were taken, from the start.</returns>
    public int Enqueue(ReadOnlySpan<byte> bytes, long run, out bool schedule)
    {
        lock (_gate)
        {
            int taken = Math.Min(bytes.Length, _ring.Length - _count);
            int tail = (_head + _count) % _ring.Length;
            int first = Math.Min(taken, _ring.Length - tail);
            bytes.Slice(0, first).CopyTo(_ring.AsSpan(tail));
            bytes.Slice(first, taken - first).CopyTo(_ring);
            _count += taken;

            // One delivery waits in the loop's work queue at most, however often the host sends.
            schedule = taken > 0 && (!_scheduled || _scheduledRun != run);
            if (schedule)
            {
                _scheduled = true;
                _scheduledRun = run;
            }

            return taken;
        }
    }

    /// <summary>The scheduled delivery is running now, or could not be scheduled: the next <see cref="Enqueue"/> schedules one again.</summary>
    public void Unschedule()
    {
        lock (_gate)
        {
            _scheduled = false;
        }
    }

    /// <summary>Copies the oldest waiting bytes into <paramref name="destination"/> without taking them (the loop only).</summary>
    /// <param name="destination">Where to; at most its length is copied.</param>
    /// <returns>How many were copied.</returns>
    public int Peek(Span<byte> destination)
    {
        lock (_gate)
        {
            int n = Math.Min(destination.Length, _count);
            int first = Math.Min(n, _ring.Length - _head);
            _ring.AsSpan(_head, first).CopyTo(destination);
            _ring.AsSpan(0, n - first).CopyTo(destination.Slice(first));
            return n;
        }
    }

    /// <summary>Takes the oldest <paramref name="count"/> bytes out (after <see cref="Peek"/> saw them; the loop only), waking senders waiting for room.</summary>
    /// <param name="count">How many (at most <see cref="Count"/>).</param>
    public void Consume(int count)
    {
        lock (_gate)
        {
            count = Math.Min(count, _count);
            _head = (_head + count) % _ring.Length;
            _count -= count;
            if (count > 0)
            {
                // A sender waiting for room may go on.
                Monitor.PulseAll(_gate);
            }
        }
    }

    /// <summary>Blocks while the queue is full, until room is made or <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <param name="cancellationToken">Ends the wait.</param>
    public void WaitForRoom(CancellationToken cancellationToken)
    {
        using CancellationTokenRegistration wake = cancellationToken.Register(static state =>
        {
            var queue = (HostByteQueue)state!;
            lock (queue._gate)
            {
                Monitor.PulseAll(queue._gate);
            }
        }, this);
        lock (_gate)
        {
            while (_count == _ring.Length && !cancellationToken.IsCancellationRequested)
            {
                Monitor.Wait(_gate);
            }
        }
    }
}
