using System;
using System.Threading;

namespace IoreqSdk.Devices;

/// <summary>
/// A reusable piece of off-loop work: <see cref="Execute"/> runs on the server's worker thread, then
/// <see cref="Complete"/> on the event loop. A device keeps a pool of these (one per request it may have in flight) and
/// hands one to <see cref="IDeviceContext.TryRunOffLoop(OffLoopWork)"/> per request, so offloading allocates nothing —
/// unlike <see cref="IDeviceContext.TryRunOffLoop{TResult}"/>, which builds a closure and an item per call.
/// </summary>
/// <remarks>
/// <para>
/// <b>Life cycle.</b> An accepted item is <see cref="IsInFlight"/> until its completion is about to run on the loop
/// (or was dropped because the server stopped); only then can it be queued again — from its own
/// <see cref="Complete"/>, for instance, to run the next step of a multi-step request. Queueing an item that is still in
/// flight throws <see cref="InvalidOperationException"/>: two threads would share its fields.
/// </para>
/// <para>
/// <b>Threads.</b> The subclass's fields are handed over by the SDK: whatever the loop wrote before queueing is visible
/// to <see cref="Execute"/>, and whatever <see cref="Execute"/> wrote is visible to <see cref="Complete"/> (both
/// hand-overs go through the worker's lock and the completion queue, which order them). <see cref="Execute"/> must not
/// touch device state or guest memory through <see cref="IDeviceContext.Memory"/>'s copies — the loop flushes guest
/// mappings on INVALIDATE; give it a buffer of its own, or guest buffers pinned on the loop
/// (<see cref="Memory.IPinnableGuestMemory"/>), released when its I/O ends and in <see cref="OnDropped"/>.
/// </para>
/// </remarks>
public abstract class OffLoopWork
{
    private const int Idle = 0;
    private const int Queued = 1;

    // Idle or Queued; claimed with a compare-exchange so that a device queueing the same item twice (from the loop and
    // another thread, or before its completion ran) is caught instead of sharing the item between two runs.
    private int _state;

    /// <summary>Creates the item (idle).</summary>
    protected OffLoopWork()
    {
    }

    /// <summary>Whether the item was accepted and its completion has not started (nor been dropped) yet.</summary>
    public bool IsInFlight => Volatile.Read(ref _state) != Idle;

    /// <summary>The worker the item was last queued on, whose place its completion frees.</summary>
    internal Server.OffLoopWorker? Worker { get; set; }

    /// <summary>What <see cref="Execute"/> threw on its last run, if it did (then <see cref="Fail"/> runs instead of <see cref="Complete"/>).</summary>
    internal Exception? Error { get; private set; }

    /// <summary>
    /// The work, on the worker thread: blocking I/O, a long computation. The token is cancelled when the server
    /// stops. An exception is contained, counted as a device fault, and reported to <see cref="Fail"/> on the loop.
    /// </summary>
    /// <param name="cancellationToken">Cancelled when the server stops.</param>
    protected abstract void Execute(CancellationToken cancellationToken);

    /// <summary>Applies the result, on the event loop (device state and guest memory may be touched); quick, as every loop callback. Not run if the server stops first.</summary>
    protected abstract void Complete();

    /// <summary>
    /// On the event loop, instead of <see cref="Complete"/>, when <see cref="Execute"/> threw (the fault is already
    /// counted and logged). The default does nothing; a pooled item returns itself to its pool here.
    /// </summary>
    /// <param name="error">What <see cref="Execute"/> threw.</param>
    protected virtual void Fail(Exception error)
    {
    }

    /// <summary>
    /// When the server stops before the item's completion ran — the item was still queued, was running, or waited for
    /// the loop — and <see cref="Complete"/> will not run: release what the item holds outside device state (a pinned
    /// guest buffer, say) here. Called once per dropped run, on the thread that stops the server or on the worker's,
    /// before the item counts as idle; it must not touch device state or guest memory. What it throws is swallowed:
    /// the teardown goes on. The default does nothing.
    /// </summary>
    protected virtual void OnDropped()
    {
    }

    /// <summary>Frees an item whose completion will never run (the server stopped), after <see cref="OnDropped"/>.</summary>
    internal void Drop()
    {
        try
        {
            OnDropped();
        }
        catch (Exception)
        {
            // A teardown path (the stopper's thread, a worker's): nothing may escape it, and no fault counter is
            // reachable from here. The item is freed regardless.
        }

        Free();
    }

    /// <summary>Claims the item for one run; <see langword="false"/> if it is in flight already.</summary>
    internal bool TryClaim() =>
        // Full fence (compare-exchange): the claim is seen before the item is queued, by anyone reading IsInFlight.
        Interlocked.CompareExchange(ref _state, Queued, Idle) == Idle;

    /// <summary>Frees the item: its completion runs next, or it was dropped.</summary>
    internal void Free() =>
        // Release: the completion's reads of the item come after this on the same thread; another thread that sees
        // Idle may queue it again, which is the device's own business once the completion began.
        Volatile.Write(ref _state, Idle);

    /// <summary>Runs <see cref="Complete"/> (the loop, the SDK's own caller).</summary>
    internal void RunComplete() => Complete();

    /// <summary>Runs <see cref="Fail"/> (the loop, the SDK's own caller).</summary>
    internal void RunFail(Exception error) => Fail(error);

    /// <summary>Runs <see cref="Execute"/> on the worker thread, containing what it throws.</summary>
    internal void Run(CancellationToken cancellationToken)
    {
        Error = null;
        try
        {
            Execute(cancellationToken);
        }
        catch (Exception e)
        {
            // Reported on the loop with the device faults; the worker thread goes on with the next item.
            Error = e;
        }
    }
}
