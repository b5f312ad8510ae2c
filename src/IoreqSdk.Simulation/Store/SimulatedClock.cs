using System;
using System.Collections.Generic;
using System.Threading.Tasks;

namespace IoreqSdk.Simulation.Store;

/// <summary>A clock that moves only when told: timeouts (libxl's 10 s wait for InitWait) are tested without waiting or wall-clock asserts.</summary>
public sealed class SimulatedClock
{
    private readonly object _gate = new();
    private readonly List<(TimeSpan Due, TaskCompletionSource<bool> Done)> _timers = [];
    private TimeSpan _now;

    /// <summary>The time since the clock was made.</summary>
    public TimeSpan Now
    {
        get
        {
            lock (_gate)
            {
                return _now;
            }
        }
    }

    /// <summary>A task that completes once <see cref="Now"/> has moved <paramref name="delay"/> on.</summary>
    public Task Delay(TimeSpan delay)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (delay <= TimeSpan.Zero)
            {
                done.SetResult(true);
            }
            else
            {
                _timers.Add((_now + delay, done));
            }
        }

        return done.Task;
    }

    /// <summary>Moves the clock on by <paramref name="step"/>, completing every delay that falls due.</summary>
    public void Advance(TimeSpan step)
    {
        var due = new List<TaskCompletionSource<bool>>();
        lock (_gate)
        {
            _now += step;
            for (int i = _timers.Count - 1; i >= 0; i--)
            {
                if (_timers[i].Due <= _now)
                {
                    due.Add(_timers[i].Done);
                    _timers.RemoveAt(i);
                }
            }
        }

        foreach (TaskCompletionSource<bool> timer in due)
        {
            timer.TrySetResult(true);
        }
    }

    /// <summary>How many delays are pending (a test can wait until the code under test has started its timeout).</summary>
    public int PendingDelays
    {
        get
        {
            lock (_gate)
            {
                return _timers.Count;
            }
        }
    }
}
