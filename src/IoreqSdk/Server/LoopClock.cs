using System;

namespace IoreqSdk.Server;

/// <summary>
/// The clock the event loop measures its callbacks with: the kernel's coarse monotonic clock, in milliseconds
/// (<c>CLOCK_MONOTONIC_COARSE</c>, a few milliseconds' resolution). Timing every request is what lets the loop see a
/// device holding it; with <see cref="System.Diagnostics.Stopwatch"/> the two reads cost ~40 ns a request on this
/// project's machines (clock_gettime at ~20 ns), which showed as a busy-poll round trip of 2.1x C's instead of 1.0x;
/// the coarse clock reads in ~3 ns, and the stall threshold (10 ms by default) is far above its resolution.
/// </summary>
internal static class LoopClock
{
    /// <summary>Now, in milliseconds of an arbitrary origin.</summary>
    public static long Now
    {
        get
        {
#if NETCOREAPP
            return Environment.TickCount64;
#else
            // 32 bits of milliseconds wrap every 49.7 days: Elapsed takes the difference modulo 2^32.
            return (uint)Environment.TickCount;
#endif
        }
    }

    /// <summary>Milliseconds from <paramref name="start"/> (a value of <see cref="Now"/>) to <paramref name="end"/>.</summary>
    public static long Elapsed(long start, long end)
    {
#if NETCOREAPP
        return end - start;
#else
        return unchecked((uint)end - (uint)start);
#endif
    }
}
