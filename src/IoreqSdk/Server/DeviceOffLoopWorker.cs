using System.Threading;
using IoreqSdk.Devices;

namespace IoreqSdk.Server;

/// <summary>
/// A device's own worker: an <see cref="OffLoopWorker"/> of several threads per run of the server, whose finished
/// items join the server's completion queue like the server's worker's. Opened at each start, closed at each stop.
/// </summary>
internal sealed class DeviceOffLoopWorker : IOffLoopWorker
{
    private readonly LoopWork _work;
    private readonly string _name;
    private OffLoopWorker? _current;

    public DeviceOffLoopWorker(LoopWork work, string name, int threadCount, int capacity)
    {
        _work = work;
        _name = name;
        ThreadCount = threadCount;
        Capacity = capacity;
    }

    public int ThreadCount { get; }

    public int Capacity { get; }

    public bool TryRun(OffLoopWork work) => _work.TryQueue(Volatile.Read(ref _current), work);

    /// <summary>A run begins: a fresh worker handing its items to this run's completion queue.</summary>
    public void Open(System.Action<OffLoopWork> finished) =>
        // Release: a device thread that reads the new worker sees it constructed.
        Volatile.Write(ref _current, new OffLoopWorker(Capacity, _name, ThreadCount, finished));

    /// <summary>The run ends: queued items are freed, running ones cancelled; nothing more is accepted until the next run.</summary>
    public void Close() => Interlocked.Exchange(ref _current, null)?.Close();
}
