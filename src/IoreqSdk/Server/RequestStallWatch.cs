using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace IoreqSdk.Server;

/// <summary>
/// Sees a request's handler holding the event loop without a clock on the request path. The loop marks the request
/// it serves with its sequence number (<see cref="Enter"/>) and marks it done, with the number negated, when the
/// handler returns (<see cref="Exit"/>): two plain stores and two loads of lines nobody else writes while nothing
/// stalls. The <see cref="StallSampler"/> thread reads the mark every sampling period; a positive mark it finds
/// unchanged for the stall threshold belongs to one request that held the loop at least that long, and it flags
/// that request; a mark that did not move at all since its last look says the loop served nothing meanwhile. The loop
/// counts and logs the overrun itself when the handler returns (loop-only diagnostics, as for every other
/// callback). Reading the coarse clock twice per request instead cost a cache miss per request in some states of
/// this project's machines (busy-poll round trips 1.5-1.8x C's instead of about 1.0x).
/// </summary>
internal sealed class RequestStallWatch
{
    private const int CacheLine = 64;

    private readonly long _thresholdTicks;

    // The loop's own: the last sequence number handed out, and the last flag it accounted for. Sequence numbers only
    // grow (across runs too), so a flag can never name a later request than the one it was raised for.
    private long _sequence;
    private long _accountedThrough;

    // The sampler's own: the mark it saw at its last look, the request it saw in progress, since when, and the last
    // request it flagged.
    private long _lastLook;
    private long _lastSeen;
    private long _lastSeenSince;
    private long _lastFlagged;

    private Shared _shared;

    public RequestStallWatch(TimeSpan threshold)
    {
        _thresholdTicks = Math.Max(1, (long)Math.Ceiling(threshold.TotalSeconds * Stopwatch.Frequency));

        // Half the threshold, 1 ms to 500 ms: a handler is flagged after holding the loop for the threshold plus at
        // most one period (two at the sampler's start), and never before the threshold, whatever the sleeps overshoot.
        SamplingPeriodMilliseconds = (int)Math.Max(1, Math.Min(500, threshold.TotalMilliseconds / 2));
    }

    /// <summary>How long the sampler sleeps between two looks at this watch.</summary>
    public int SamplingPeriodMilliseconds { get; }

    /// <summary>The loop starts a request's handler: marks it with a new sequence number.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long Enter()
    {
        long sequence = ++_sequence;

        // A plain store. The sampler needs no ordering with anything else the loop writes: it compares the mark with
        // itself, one sample later, and a store becomes visible within nanoseconds, far below any threshold. The
        // handler's call that follows is opaque to the JIT, so the store is made before the handler runs.
        _shared.Busy = sequence;

        // A plain load of a flag that changes only when every loop was idle for a while: after such a rest, the first
        // request wakes the sampler. Without a fence the load may pass the store above; if the sampler went to rest in
        // that instant, it looks again within its resting period (StallSampler.RestingPeriodMilliseconds) anyway.
        if (StallSampler.IsResting)
        {
            StallSampler.Rouse();
        }

        return sequence;
    }

    /// <summary>The handler of <paramref name="sequence"/> returned. Whether a stall was flagged that the loop has not accounted for.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Exit(long sequence)
    {
        // Plain store (done: the number negated, so the sampler still sees that the loop moved), then a plain load of
        // the sampler's line, which it writes only when it flags a stall. A flag raised for this request just after
        // this load (the sampler read the mark just before the store above) is seen at a later exit: Stalled only
        // grows, and anything above _accountedThrough is accounted once.
        _shared.Busy = -sequence;
        return _shared.Stalled > _accountedThrough;
    }

    /// <summary>
    /// The overrun <see cref="Exit"/> reported: whether it was raised for <paramref name="sequence"/> (else for an
    /// earlier request, seen late), and at least how long, in milliseconds, the flagged request held the loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public bool TakeOverrun(long sequence, out long heldMilliseconds)
    {
        // Full fence: Since, written by the sampler before its release store of Stalled, is read after Stalled.
        Interlocked.MemoryBarrier();
        long stalled = Volatile.Read(ref _shared.Stalled);
        long since = Volatile.Read(ref _shared.StalledSince);
        _accountedThrough = stalled;
        long ticks = stalled == sequence ? Stopwatch.GetTimestamp() - since : _thresholdTicks;
        heldMilliseconds = Math.Max(ticks, _thresholdTicks) * 1000 / Stopwatch.Frequency;
        return stalled == sequence;
    }

    /// <summary>The sampler's look at the mark (sampler thread only). Whether the loop served anything since the last look.</summary>
    public bool Sample(long now)
    {
        // Volatile: a fresh read on every look (the loop's stores are plain; coherence brings them here).
        return Judge(Volatile.Read(ref _shared.Busy), now);
    }

    /// <summary>
    /// The second half of a look: what the sampler concludes from the mark <paramref name="busy"/> it read at
    /// <paramref name="now"/>. The loop may have moved on in between; a flag it raises then is seen at a later exit.
    /// </summary>
    public bool Judge(long busy, long now)
    {
        bool moved = busy != _lastLook || busy > 0;
        _lastLook = busy;
        if (busy <= 0 || busy != _lastSeen)
        {
            _lastSeen = busy;
            _lastSeenSince = now;
            return moved;
        }

        // The same request at two looks at least the threshold apart: it held the loop for at least that long (it
        // began before the first look).
        if (busy != _lastFlagged && now - _lastSeenSince >= _thresholdTicks)
        {
            _lastFlagged = busy;
            _shared.StalledSince = _lastSeenSince;

            // Release: the loop that sees this flag (after its fence) sees StalledSince stored above.
            Volatile.Write(ref _shared.Stalled, busy);
        }

        return moved;
    }

    // The mark the loop writes per request and the flag the sampler writes per stall, on lines of their own (as
    // ConcurrentQueueSegment pads its head and tail): the loop's stores never share a line with the flag it loads,
    // nor with anything else of this object.
    [StructLayout(LayoutKind.Explicit, Size = 3 * CacheLine)]
    private struct Shared
    {
        [FieldOffset(CacheLine)]
        public long Busy;

        [FieldOffset(2 * CacheLine)]
        public long Stalled;

        [FieldOffset((2 * CacheLine) + 8)]
        public long StalledSince;
    }
}
