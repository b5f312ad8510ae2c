using System;
using System.Threading;
using IoreqSdk.Abi;

namespace IoreqSdk.Server;

/// <summary>
/// Sees a request holding the loop without a clock on the request path. The loop marks the request it serves with a
/// token (two stores to fields only it writes: <see cref="Enter"/>, <see cref="Exit"/>); a timer samples the token once
/// per stall threshold, and a request still marked at the next sample held the loop at least that long: an overrun.
/// Reading a clock twice per request instead cost a cache miss per request in some states of this project's machines
/// (a busy-poll round trip 1.7x C's instead of 0.94x, measured with and without the two reads).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The timer lives from the loop's start to its end: EventLoop.Run stops it in a finally, as the loop's own lifetime is not an IDisposable's.")]
internal sealed class RequestWatchdog
{
    private readonly LoopDiagnostics _diagnostics;
    private readonly int _periodMilliseconds;
    private Timer? _timer;

    // Written by the loop only. The token last, with release semantics: a sample that sees it sees the request's
    // address and shape stored before it (they only name the request in the log).
    private long _token;
    private long _sequence;
    private ulong _address;
    private long _shape;

    // The timer's own (its callbacks never overlap: each re-arms the next).
    private long _lastSeen;
    private long _lastCounted;

    public RequestWatchdog(LoopDiagnostics diagnostics, TimeSpan threshold)
    {
        _diagnostics = diagnostics;
        _periodMilliseconds = (int)Math.Max(1, Math.Min(int.MaxValue / 2, Math.Ceiling(threshold.TotalMilliseconds)));
    }

    /// <summary>The loop starts serving <paramref name="request"/>.</summary>
    public void Enter(in IoRequest request)
    {
        _address = request.Address;
        _shape = (long)request.Type | ((long)request.Size << 8) | (request.IsRead ? 1L << 40 : 0);
        Volatile.Write(ref _token, ++_sequence);
    }

    /// <summary>The request was answered.</summary>
    public void Exit() => Volatile.Write(ref _token, 0);

    /// <summary>Starts sampling (when the loop starts).</summary>
    public void Start()
    {
        _lastSeen = 0;
        _lastCounted = 0;
        _timer = new Timer(Sample, null, _periodMilliseconds, Timeout.Infinite);
    }

    /// <summary>Stops sampling (when the loop ends); idempotent.</summary>
    public void Stop() => Interlocked.Exchange(ref _timer, null)?.Dispose();

    private void Sample(object? state)
    {
        try
        {
            long token = Volatile.Read(ref _token);
            if (token != 0 && token == _lastSeen && token != _lastCounted)
            {
                _lastCounted = token;
                var type = (IoreqType)(byte)Volatile.Read(ref _shape);
                long shape = Volatile.Read(ref _shape);
                _diagnostics.OnWatchedRequestOverrun(type, Volatile.Read(ref _address), (int)((shape >> 8) & 0xFFFF), (shape >> 40) != 0, _periodMilliseconds);
            }

            _lastSeen = token;
        }
        catch (Exception)
        {
            // A timer callback must not end the process; the next sample tries again.
        }
        finally
        {
            try
            {
                _timer?.Change(_periodMilliseconds, Timeout.Infinite);
            }
            catch (ObjectDisposedException)
            {
                // Stopped meanwhile.
            }
        }
    }
}
