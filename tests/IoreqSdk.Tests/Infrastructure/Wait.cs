using System;
using System.Diagnostics;
using System.Threading;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>Bounded waits for what another thread (the loop, the worker, work a device posted) does to show.</summary>
internal static class Wait
{
    /// <summary>Polls <paramref name="condition"/> until it holds or 10 seconds pass.</summary>
    /// <returns>Whether it held.</returns>
    public static bool Until(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
            {
                return false;
            }

            Thread.Yield();
        }

        return true;
    }
}
