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
/// <remarks>
/// An idle device model must not wake hundreds of times a second: on an oversubscribed or emulated host each wakeup
/// of a dom0 process is expensive (a PV dom0 takes every timer and wakeup through the hypervisor). So once no loop
/// served anything for <see cref="RestAfterIdleMilliseconds"/>, the sampler rests: it looks once every
/// <see cref="RestingPeriodMilliseconds"/> only, until a loop's next request rouses it (<see cref="Rouse"/>, taken on
/// the first request after the rest only).
/// </remarks>
internal static class StallSampler
{
    /// <summary>How long every loop must have served nothing before the sampler rests.</summary>
    public const int RestAfterIdleMilliseconds = 100;

    /// <summary>How often a resting sampler still looks (bounds a rest begun just as a request started).</summary>
    public const int RestingPeriodMilliseconds = 1000;

    private static readonly object s_gate = new();
    private static RequestStallWatch[] s_watches = [];
    private static Thread? s_thread;
    private static int s_resting;

    /// <summary>Whether the sampler rests (every loop was idle); the next request should <see cref="Rouse"/> it.</summary>
    public static bool IsResting => s_resting != 0;

    /// <summary>A loop got a request while the sampler rested: back to looking every sampling period.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public static void Rouse()
    {
        // One rouser per rest: the others see the flag cleared and go on.
        if (Interlocked.Exchange(ref s_resting, 0) != 0)
        {
            lock (s_gate)
            {
                Monitor.PulseAll(s_gate);
            }
        }
    }

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
        int idleMilliseconds = 0;
        while (true)
        {
            try
            {
                LookOnce(ref idleMilliseconds);
            }
            catch (Exception)
            {
                // Nothing in a look throws; should anything, an exception escaping this thread would end the process,
                // while a missed look only delays an overrun's count. Go on sampling.
            }
        }
    }

    /// <summary>Waits for the next look (a loop to watch, the sampling period, or a rest), then looks at every loop.</summary>
    private static void LookOnce(ref int idleMilliseconds)
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

            return;
        }

        int period = int.MaxValue;
        foreach (RequestStallWatch watch in watches)
        {
            period = Math.Min(period, watch.SamplingPeriodMilliseconds);
        }

        if (Volatile.Read(ref s_resting) != 0)
        {
            lock (s_gate)
            {
                // Rouse clears the flag before it pulses, under this lock: checked again here, no pulse is lost.
                if (s_resting != 0)
                {
                    Monitor.Wait(s_gate, RestingPeriodMilliseconds);
                }
            }
        }
        else
        {
            Thread.Sleep(period);
        }

        long now = Stopwatch.GetTimestamp();
        bool served = false;
        foreach (RequestStallWatch watch in Volatile.Read(ref s_watches))
        {
            served |= watch.Sample(now);
        }

        if (served)
        {
            idleMilliseconds = 0;
            Volatile.Write(ref s_resting, 0);
        }
        else if (s_resting == 0 && (idleMilliseconds += period) >= RestAfterIdleMilliseconds)
        {
            idleMilliseconds = 0;
            Volatile.Write(ref s_resting, 1);
        }
    }
}
