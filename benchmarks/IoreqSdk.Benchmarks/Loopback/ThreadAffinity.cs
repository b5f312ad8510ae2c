using System;
using System.IO;
using System.Runtime.InteropServices;

namespace IoreqSdk.Benchmarks.Loopback;

/// <summary>Pins the calling thread to one CPU, as the C baseline pins its threads (pthread_setaffinity_np).</summary>
internal static class ThreadAffinity
{
    public static unsafe void PinCurrentThread(int cpu)
    {
        if (cpu < 0 || cpu >= 64)
        {
            throw new ArgumentOutOfRangeException(nameof(cpu), cpu, "The benchmarks pin to one of the first 64 CPUs.");
        }

        // sched_setaffinity with pid 0 applies to the calling thread only (Linux affinity is per thread).
        ulong mask = 1UL << cpu;
        if (SchedSetAffinity(0, sizeof(ulong), &mask) != 0)
        {
            throw new InvalidOperationException($"Cannot pin to CPU {cpu}: errno {Marshal.GetLastWin32Error()} (the machine has {Environment.ProcessorCount} CPUs).");
        }
    }

    /// <summary>
    /// Pins another thread of this process, found by its name (<c>/proc/self/task/*/comm</c>): the SDK's own threads
    /// (a device's I/O thread) offer no hook, and the benchmark pins them where the C side pins its own.
    /// </summary>
    public static unsafe void PinThreadNamed(string name, int cpu)
    {
        foreach (string task in Directory.GetDirectories("/proc/self/task"))
        {
            string comm;
            try
            {
                comm = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
            }
            catch (IOException)
            {
                continue;   // the thread ended meanwhile
            }

            if (comm == name)
            {
                ulong mask = 1UL << cpu;
                int tid = int.Parse(Path.GetFileName(task), System.Globalization.CultureInfo.InvariantCulture);
                if (SchedSetAffinity(tid, sizeof(ulong), &mask) != 0)
                {
                    throw new InvalidOperationException($"Cannot pin thread {tid} ({name}) to CPU {cpu}: errno {Marshal.GetLastWin32Error()}.");
                }

                return;
            }
        }

        throw new InvalidOperationException($"No thread named '{name}' to pin.");
    }

    [DllImport(Interop.Libraries.Libc, EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static extern unsafe int SchedSetAffinity(int pid, nuint size, ulong* mask);
}
