using System;
using System.Threading;
using IoreqSdk.Memory;

namespace IoreqSdk.Devices;

/// <summary>
/// What a device can do to the guest: map its regions, reach guest RAM, schedule work. It never learns the guest's
/// architecture: interrupts reach it as <see cref="InterruptLine"/>s from its host bridge or its platform.
/// </summary>
/// <remarks>
/// <para>
/// <b>Threads.</b> The SDK calls a device on its server's event loop, one call at a time, and the loop is the only
/// thread that may touch device state — except the handlers of regions the device declared concurrent
/// (<see cref="DeviceModel.ServeConcurrently"/>), which a server's request loops also call. Each member says where it may be used: <see cref="Memory"/>,
/// <see cref="MapRegion"/> and <see cref="UnmapRegion"/> only on the loop (other threads get an
/// <see cref="InvalidOperationException"/>, never a silent race); <see cref="Post"/>,
/// <see cref="TryPost"/>, <see cref="TryRunOffLoop{TResult}"/> and <see cref="TryRunOffLoop(OffLoopWork)"/> from any thread.
/// </para>
/// <para>
/// <b>Long work never runs on the loop.</b> While a handler runs, every vCPU that touches any device of the server
/// waits, so a handler returns in microseconds. Work that takes longer — a computation, a large copy, blocking I/O —
/// goes to <see cref="TryRunOffLoop{TResult}"/> (or, allocation-free, <see cref="TryRunOffLoop(OffLoopWork)"/>) and
/// delivers its result to a completion on the loop. The loop watches each callback (requests without reading a clock:
/// a sampler thread sees a request still running) and counts those that held it longer than
/// <see cref="Server.IoreqServerOptions.LoopStallThreshold"/> (<see cref="Server.IoreqServerStatistics.LoopOverruns"/>,
/// logged at most once a second).
/// </para>
/// </remarks>
public interface IDeviceContext
{
    /// <summary>
    /// Guest RAM, for DMA — on the event loop only (a handler, posted work, a completion), while the server runs.
    /// Used from another thread it throws <see cref="InvalidOperationException"/>: the loop flushes its mappings when
    /// the guest's physical map changes (INVALIDATE), and an access racing that flush would leak a foreign mapping or
    /// touch an unmapped page. Copy guest memory in a completion (or in posted work), not in off-loop work.
    /// </summary>
    IGuestMemory Memory { get; }

    /// <summary>
    /// Maps a region at a guest address, or moves it there: the SDK claims the new range from the hypervisor and
    /// routes it to the device, without a moment where the old and new ranges overlap or a claimed address has no
    /// handler. On the event loop only while the server runs (any thread before it starts).
    /// </summary>
    /// <param name="region">One of the device's regions.</param>
    /// <param name="address">The guest address (port number for port regions).</param>
    void MapRegion(DeviceRegion region, ulong address);

    /// <summary>Unmaps a region; accesses to its old range are no longer the device's. On the event loop only while the
    /// server runs (any thread before it starts).</summary>
    /// <param name="region">One of the device's regions.</param>
    void UnmapRegion(DeviceRegion region);

    /// <summary>
    /// Runs <paramref name="work"/> on the device's thread (the server's event loop) as soon as it can — after the
    /// request being served is answered, when called from the loop. Call it from other threads — an I/O completion,
    /// input arriving, a timer — so that device state is only touched there. From any thread.
    /// </summary>
    /// <param name="work">The work; quick, as every loop callback (exceptions are contained and counted).</param>
    /// <remarks>The queue is bounded (<see cref="Server.IoreqServerOptions.MaxPostedWork"/>): posting to a full queue
    /// throws <see cref="InvalidOperationException"/> (use <see cref="TryPost"/> to handle that). Work posted once the
    /// server is stopping or stopped is dropped, as it could never run.</remarks>
    void Post(Action work);

    /// <summary>
    /// Which run of the server this is: 1 from its first start, one more at every start after a stop. Work posted in an
    /// earlier run was dropped at its stop (see <see cref="Post"/>), so a device that remembers having posted something
    /// (a coalesced pass, say) compares the run it posted in with this one. From any thread.
    /// </summary>
    long RunNumber { get; }

    /// <summary>As <see cref="Post"/>, but reports a full queue or a stopped server instead of throwing. From any thread.</summary>
    /// <param name="work">The work.</param>
    /// <returns>Whether the work was queued; refusals are counted in <see cref="Server.IoreqServerStatistics.RefusedPosts"/>.</returns>
    bool TryPost(Action work);

    /// <summary>
    /// Runs <paramref name="work"/> away from the event loop — on the server's worker thread, one item at a time —
    /// and then <paramref name="completion"/> with its result on the loop, where device state may be touched. This
    /// is where long work goes (QEMU runs edu's factorial on a worker thread the same way). From any thread.
    /// </summary>
    /// <typeparam name="TResult">What the work produces.</typeparam>
    /// <param name="work">
    /// The work. It runs on another thread: it must not touch device state or <see cref="Memory"/> — give it copies
    /// of its inputs and return its result. The token is cancelled when the server stops; an exception is contained
    /// and counted (the completion then does not run).
    /// </param>
    /// <param name="completion">Applies the result on the loop; quick, as every loop callback. Not run if the server
    /// stops first.</param>
    /// <returns>
    /// Whether the work was accepted: at most <see cref="Server.IoreqServerOptions.MaxOffLoopWork"/> items are queued,
    /// running or awaiting their completion at once, so a guest cannot queue unbounded work; nothing is accepted
    /// unless the server runs. Refusals are counted in <see cref="Server.IoreqServerStatistics.RefusedOffLoopWork"/>;
    /// a device answers them as its hardware would when busy.
    /// </returns>
    bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion);

    /// <summary>
    /// As <see cref="TryRunOffLoop{TResult}"/>, with a reusable item and no allocation: the server's worker runs
    /// <see cref="OffLoopWork.Execute"/>, then the loop runs <see cref="OffLoopWork.Complete"/> (or
    /// <see cref="OffLoopWork.Fail"/> if the work threw). A device that offloads per request (block I/O) keeps a pool of
    /// items and queues one per request. From any thread.
    /// </summary>
    /// <param name="work">An item that is not <see cref="OffLoopWork.IsInFlight"/> (one that is throws <see cref="InvalidOperationException"/>).</param>
    /// <returns>
    /// Whether the item was accepted, within the same bound as <see cref="TryRunOffLoop{TResult}"/> (shared with it) and
    /// only while the server runs; refusals are counted in <see cref="Server.IoreqServerStatistics.RefusedOffLoopWork"/>
    /// and leave the item free. An item whose completion is dropped because the server stopped is free again
    /// afterwards.
    /// </returns>
    /// <remarks>The server has one worker thread: every device's off-loop work of a server runs one item at a time, in
    /// the order queued. Blocking I/O of several devices (or several requests of one) is serialised there.</remarks>
    bool TryRunOffLoop(OffLoopWork work);

    /// <summary>
    /// Creates a worker of the device's own: <paramref name="threadCount"/> threads that run its items in parallel —
    /// blocking I/O that the server's one worker would serialise — with each completion on the loop, as
    /// <see cref="TryRunOffLoop(OffLoopWork)"/>'s. It is bounded by <paramref name="capacity"/> (not by
    /// <see cref="Server.IoreqServerOptions.MaxOffLoopWork"/>), cancelled and dropped when the server stops, and
    /// accepts work while the server runs. Create it once (when the device joins the server, or on the loop); its
    /// threads start on first use.
    /// </summary>
    /// <param name="name">The threads' name.</param>
    /// <param name="threadCount">Threads (1 to 64).</param>
    /// <param name="capacity">Items queued, running or awaiting completion at once, at most (1 to 4096).</param>
    /// <returns>The worker.</returns>
    IOffLoopWorker CreateOffLoopWorker(string name, int threadCount, int capacity);
}
