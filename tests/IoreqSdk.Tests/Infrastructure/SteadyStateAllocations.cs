using System;
using NUnit.Framework;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>
/// Whether a path allocates in its steady state, measured on this thread: after a warm-up, three passes of
/// <c>perPass</c> rounds each. A per-round allocation (24 bytes at the least) shows in every pass; a one-off of the
/// runtime's (a type loaded the first time a path runs: 3,176 bytes once in a full suite run) in one. So at least one
/// pass must allocate nothing, and none as much as a round's worth.
/// </summary>
internal static class SteadyStateAllocations
{
    private const int Passes = 3;
    private const int WarmUpRounds = 64;
    private const int SmallestAllocation = 24;

    /// <summary>Runs the warm-up and the passes; asserts every round succeeded and the steady state allocated nothing.</summary>
    /// <param name="rounds">Runs the given number of rounds and returns how many succeeded.</param>
    /// <param name="perPass">Rounds per measured pass.</param>
    /// <param name="what">What a round is, for the messages ("round", "request", "buffer").</param>
    public static void AssertNone(Func<int, int> rounds, int perPass, string what = "round")
    {
        int warm = rounds(WarmUpRounds);
        long[] allocated = new long[Passes];
        int done = 0;
        for (int pass = 0; pass < Passes; pass++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            done += rounds(perPass);
            allocated[pass] = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(warm, Is.EqualTo(WarmUpRounds), $"every warm-up {what} succeeded");
            Assert.That(done, Is.EqualTo(Passes * perPass), $"every measured {what} succeeded");
            Assert.That(allocated, Has.Some.Zero, $"bytes per pass: {string.Join(", ", allocated)}");
            Assert.That(allocated, Has.All.LessThan(perPass * SmallestAllocation), $"no pass allocates per {what}");
        }
    }

    /// <summary>The rounds a test runs in all: the warm-up and the passes (for counters the device keeps).</summary>
    /// <param name="perPass">Rounds per measured pass.</param>
    /// <returns>The total.</returns>
    public static int TotalRounds(int perPass) => WarmUpRounds + (Passes * perPass);
}
