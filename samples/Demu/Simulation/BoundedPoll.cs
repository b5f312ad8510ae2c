using System;
using System.Diagnostics;
using System.Threading;

namespace Demu.Simulation;

/// <summary>The scripted guest's only way to wait: spin on a condition, giving up after five seconds.</summary>
internal static class BoundedPoll
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(5);

    public static bool Until(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        var spinner = default(SpinWait);
        while (!condition())
        {
            if (clock.Elapsed > Limit)
            {
                return false;
            }

            spinner.SpinOnce();
        }

        return true;
    }
}
