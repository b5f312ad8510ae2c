using System;
using IoreqSdk.Simulation;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>Bounded waits for what another thread (the loop, the worker, work a device posted) does to show.</summary>
internal static class Wait
{
    /// <summary>Polls <paramref name="condition"/> until it holds or 10 seconds pass (the public harness's wait).</summary>
    /// <returns>Whether it held.</returns>
    public static bool Until(Func<bool> condition) => SimulatedPciGuest.WaitUntil(condition, TimeSpan.FromSeconds(10));
}
