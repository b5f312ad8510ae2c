using System;
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

    [DllImport(Interop.Libraries.Libc, EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static extern unsafe int SchedSetAffinity(int pid, nuint size, ulong* mask);
}
