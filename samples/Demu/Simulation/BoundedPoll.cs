using System;
using IoreqSdk.Simulation;

namespace Demu.Simulation;

/// <summary>The scripted guest's only way to wait: poll a condition, giving up after five seconds (the SDK harness's wait).</summary>
internal static class BoundedPoll
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(5);

    public static bool Until(Func<bool> condition) => SimulatedPciGuest.WaitUntil(condition, Limit);
}
