using System;
using System.Diagnostics;
using System.Threading;

namespace IoreqSdk.Server;

/// <summary>
/// One thread for the whole process that looks at every running event loop's <see cref="RequestStallWatch"/>, then
/// sleeps for the shortest sampling period among them. It allocates nothing while it samples (the watches are an
/// array replaced, never changed, when a loop starts or ends), calls no user code and touches no native resource, so
/// a look at a loop that has just ended is harmless; with no loop running it blocks until one starts. A background
/// thread: it never keeps the process alive.
/// </summary>
internal static class StallSampler
{
    private static readonly object s_gate = new();
    private static RequestStallWatch[] s_watches = [];
    private static Thread? s_thread;

    /// <summary>A loop starts: its watch is looked at from the next sample on.</summary>
    public static void Watch(RequestStallWatch watch)
    {
        lock (s_gate)
        {
            RequestStallWatch[] current = s_watches;
            var next = new RequestStallWatch[current.Length + 1];
            Array.Copy(current, next, current.Length);
            next[current.Length] = watch;

            // Release: the sampler that reads the new array sees it filled.
            Volatile.Write(ref s_watches, next);
            if (s_thread is null)
            {
                s_thread = new Thread(Run) { IsBackground = true, Name = "ioreq stall sampler" };
                s_thread.Start();
            }
            else
            {
                Monitor.PulseAll(s_gate);
            }
        }
    }

    /// <summary>A loop ends: its watch is no longer looked at (a look already under way may still finish).</summary>
    public static void Unwatch(RequestStallWatch watch)
    {
        lock (s_gate)
        {
            RequestStallWatch[] current = s_watches;
            int index = Array.IndexOf(current, watch);
            if (index < 0)
            {
                return;
            }

            var next = new RequestStallWatch[current.Length - 1];
            Array.Copy(current, 0, next, 0, index);
            Array.Copy(current, index + 1, next, index, current.Length - index - 1);
            Volatile.Write(ref s_watches, next);
        }
    }

    private static void Run()
    {
        while (true)
        {
            try
            {
                RequestStallWatch[] watches = Volatile.Read(ref s_watches);
                if (watches.Length == 0)
                {
                    lock (s_gate)
                    {
                        while (s_watches.Length == 0)
                        {
                            Monitor.Wait(s_gate);
                        }
                    }

                    continue;
                }

                int period = int.MaxValue;
                foreach (RequestStallWatch watch in watches)
                {
                    period = Math.Min(period, watch.SamplingPeriodMilliseconds);
                }

                Thread.Sleep(period);
                long now = Stopwatch.GetTimestamp();
                foreach (RequestStallWatch watch in Volatile.Read(ref s_watches))
                {
                    watch.Sample(now);
                }
            }
            catch (Exception)
            {
                // Nothing above throws; should anything, an exception escaping this thread would end the process,
                // while a missed look only delays an overrun's count. Go on sampling.
            }
        }
    }
}
