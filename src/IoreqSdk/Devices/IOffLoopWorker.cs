namespace IoreqSdk.Devices;

/// <summary>
/// A device's own off-loop worker (<see cref="IDeviceContext.CreateOffLoopWorker"/>): threads that run its
/// <see cref="OffLoopWork"/> items in parallel — blocking file I/O, say — with the completions on the server's event
/// loop, as the server's worker's. Bounded, cancelled and dropped on stop, as the server's; it lives as long as the
/// server (closed at each stop, open again at the next start).
/// </summary>
public interface IOffLoopWorker
{
    /// <summary>The threads that run items at once.</summary>
    int ThreadCount { get; }

    /// <summary>Items queued, running or awaiting their completion at once, at most.</summary>
    int Capacity { get; }

    /// <summary>
    /// Runs <see cref="OffLoopWork.Execute"/> on one of the worker's threads, then the completion on the loop. From any
    /// thread.
    /// </summary>
    /// <param name="work">An item that is not <see cref="OffLoopWork.IsInFlight"/>.</param>
    /// <returns>Whether the item was accepted (the bound not reached, the server running); refusals are counted in
    /// <see cref="Server.IoreqServerStatistics.RefusedOffLoopWork"/> and leave the item free.</returns>
    bool TryRun(OffLoopWork work);
}
