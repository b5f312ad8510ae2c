using System;
using IoreqSdk.Abi;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Server;

/// <summary>
/// How an <see cref="IoreqServer"/> runs. The server validates the options and takes a copy of them when it is
/// constructed: an invalid value is an <see cref="ArgumentException"/> there, never a failure later on the loop
/// thread, and changing the object afterwards changes nothing.
/// </summary>
public sealed class IoreqServerOptions
{
    /// <summary>The largest <see cref="GuestMemoryCacheFrames"/>: 1 GiB of guest RAM mapped at once.</summary>
    public const int MaxGuestMemoryCacheFrames = 1 << 18;

    /// <summary>The guest domain to serve: below <c>DOMID_FIRST_RESERVED</c> (0x7FF0), Xen's special domain ids.</summary>
    public ushort Domain { get; set; }

    /// <summary>
    /// The guest machine (<see cref="Platforms.GuestPlatform"/>); <see langword="null"/> takes the SDK's platform for
    /// the hypervisor's guests (<see cref="Platforms.GuestPlatform.For"/>).
    /// </summary>
    public Platforms.GuestPlatform? Platform { get; set; }

    /// <summary>
    /// The buffered-ring mode; <see langword="null"/> chooses the platform's (<see cref="Platforms.GuestPlatform.BufferedMode"/>:
    /// <see cref="BufferedIoreqMode.Atomic"/> on x86, <see cref="BufferedIoreqMode.Off"/> on Arm64, where Xen rejects a ring).
    /// </summary>
    public BufferedIoreqMode? BufferedMode { get; set; }

    /// <summary>Where diagnostics go; nothing is logged when <see langword="null"/>. Nothing is logged per request.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// Whether <see cref="IoreqServer.Start"/> ends by restricting the hypervisor's handles to <see cref="Domain"/>
    /// (<see cref="Hypervisor.IHypervisor.Restrict"/>) before the event loop serves the guest's first request: from
    /// then on a device model the guest took over cannot act on any other domain through them. Irreversible, and for
    /// the whole hypervisor object: it can serve no other guest afterwards. Off by default.
    /// </summary>
    public bool RestrictHandlesToDomain { get; set; }

    /// <summary>How many guest RAM frames the server keeps mapped at most (the map cache's capacity): 1 to
    /// <see cref="MaxGuestMemoryCacheFrames"/>.</summary>
    public int GuestMemoryCacheFrames { get; set; } = 256;

    /// <summary>The largest <see cref="GuestMemoryPinWindows"/>: 4 GiB of guest RAM mapped for pinning at once.</summary>
    public const int MaxGuestMemoryPinWindows = 1 << 14;

    /// <summary>
    /// How many 256 KiB windows of guest RAM the server keeps mapped for devices' zero-copy I/O
    /// (<see cref="Memory.IPinnableGuestMemory"/>): 1 to <see cref="MaxGuestMemoryPinWindows"/>; 64 (16 MiB) by default.
    /// A pin whose window is not mapped maps it (one hypercall for 64 frames) and evicts the window that held its
    /// slot; more windows mean fewer maps for a guest whose I/O buffers are spread over its RAM, at the price of the
    /// mappings (on an Arm dom0, each mapped frame also takes a page of dom0's own).
    /// </summary>
    public int GuestMemoryPinWindows { get; set; } = 64;

    /// <summary>
    /// How many items <see cref="Devices.IDeviceContext.Post"/> may have waiting for the event loop at once (1 to
    /// 1,048,576). A full queue refuses more: a device thread (or a guest making a device post) cannot grow it without
    /// bound.
    /// </summary>
    public int MaxPostedWork { get; set; } = 4096;

    /// <summary>
    /// How many items of <see cref="Devices.IDeviceContext.TryRunOffLoop{TResult}"/> may be queued or running at once,
    /// completions not yet delivered included (1 to 4096). They run one at a time on the server's worker thread.
    /// </summary>
    public int MaxOffLoopWork { get; set; } = 16;

    /// <summary>
    /// How long one device callback (a request's handler, posted work, a completion) may hold the event loop before
    /// the loop counts an overrun (<see cref="IoreqServerStatistics.LoopOverruns"/>) and logs it, at most once a
    /// second. The loop is the only thread of the server: while a callback runs, every vCPU that touches one of its
    /// devices waits. Greater than zero; 10 ms by default.
    /// </summary>
    /// <remarks>
    /// A request's handler is watched without a clock on the request path: a process-wide sampler thread looks at
    /// each running loop every half threshold (1 ms to 500 ms apart), so a handler is counted once it held the loop
    /// for the threshold plus at most one such period, and never when it held it for less than the threshold. The
    /// overrun is counted and logged on the loop when the handler returns. The other callbacks are timed as they run.
    /// </remarks>
    public TimeSpan LoopStallThreshold { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>The longest <see cref="BusyPoll"/>: one second.</summary>
    public static readonly TimeSpan MaxBusyPoll = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a loop spins on its vCPUs' slots after serving a request before it sleeps on the event channel
    /// again: zero (the default) never spins, up to <see cref="MaxBusyPoll"/>. A guest whose next request comes within
    /// the time is served without an event's wake-up (and, on Linux, the vCPU whose request woke the loop without the
    /// interrupt Xen's notification raises in this domain: its port stays masked while the loop spins, so each
    /// notification only sets it pending; another vCPU's port raises one at its first notification of the spin).
    /// </summary>
    /// <remarks>
    /// The price is a CPU a loop (<see cref="LoopThreads"/>, each spinning on its own vCPUs' slots): a loop thread runs
    /// flat out for up to this long after every request, and for as long as the guest keeps sending requests less than
    /// this apart — a guest that does so keeps a CPU of this domain busy a loop the whole time. Leave those CPUs free:
    /// the server's worker, the devices' threads and the process's other threads need another one (do not confine the
    /// whole process to the CPUs the loops spin on). While spinning, the
    /// loop still drains the buffered ring, runs posted work and completions, and stops at once when asked. Requests
    /// found by spinning are counted in <see cref="IoreqServerStatistics.PolledRequests"/>; the notifications Xen sent
    /// for them arrive later and are counted in <see cref="IoreqServerStatistics.PolledEvents"/>, not as spurious.
    /// </remarks>
    public TimeSpan BusyPoll { get; set; }

    /// <summary>The most loop threads a server runs: one per slot of the ioreq page.</summary>
    public const int MaxLoopThreads = Abi.SharedIoPage.SlotCount;

    /// <summary>
    /// How many threads serve the guest's vCPUs: the event loop and <c>LoopThreads - 1</c> request loops (one by
    /// default; never more than the guest has vCPUs, the rest are not started). vCPU <c>n</c> is served by loop
    /// <c>n % LoopThreads</c>, loop 0 being the event loop, each loop on its own event-channel handle. A request loop
    /// serves its vCPUs' single-element accesses to regions their devices declared concurrent
    /// (<see cref="Devices.DeviceModel.ServeConcurrently"/>) itself, so they run in parallel; it hands everything else
    /// — other regions, string and rep forms, PCI configuration, INVALIDATE, an access while buffered writes wait — to
    /// the event loop, which serves it as it serves its own vCPUs. A server whose devices declare nothing concurrent
    /// gains nothing from more than one.
    /// </summary>
    /// <remarks>With <see cref="BusyPoll"/> every loop spins on its own vCPUs' slots after a request — a CPU a loop while
    /// the guest keeps it busy — and the event loop's spin also serves what the request loops hand over.</remarks>
    public int LoopThreads { get; set; } = 1;

    /// <summary>A validated copy: what the server runs with.</summary>
    internal IoreqServerOptions ValidatedCopy()
    {
        if (Domain >= 0x7FF0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(Domain), $"Domain {Domain} is one of Xen's reserved ids (DOMID_FIRST_RESERVED = 0x7FF0 and up), not a guest.");
        }

        if (BufferedMode is BufferedIoreqMode mode && mode is not (BufferedIoreqMode.Off or BufferedIoreqMode.Atomic or BufferedIoreqMode.Legacy))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(BufferedMode), $"{(int)mode} is not a buffered-ring mode.");
        }

        if (GuestMemoryPinWindows < 1 || GuestMemoryPinWindows > MaxGuestMemoryPinWindows)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(GuestMemoryPinWindows), $"The server maps 1 to {MaxGuestMemoryPinWindows} windows for pinning, not {GuestMemoryPinWindows}.");
        }

        if (GuestMemoryCacheFrames < 1 || GuestMemoryCacheFrames > MaxGuestMemoryCacheFrames)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(GuestMemoryCacheFrames), $"The guest-memory cache holds 1 to {MaxGuestMemoryCacheFrames} frames, not {GuestMemoryCacheFrames}.");
        }

        if (MaxPostedWork < 1 || MaxPostedWork > 1 << 20)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(MaxPostedWork), $"The posted-work queue holds 1 to {1 << 20} items, not {MaxPostedWork}.");
        }

        if (MaxOffLoopWork < 1 || MaxOffLoopWork > 4096)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(MaxOffLoopWork), $"The off-loop work queue holds 1 to 4096 items, not {MaxOffLoopWork}.");
        }

        if (LoopStallThreshold <= TimeSpan.Zero || LoopStallThreshold > TimeSpan.FromDays(1))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(LoopStallThreshold), $"The loop-stall threshold is greater than zero and at most a day, not {LoopStallThreshold}.");
        }

        if (BusyPoll < TimeSpan.Zero || BusyPoll > MaxBusyPoll)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(BusyPoll), $"The loop busy-polls from zero (never) to {MaxBusyPoll.TotalSeconds} s after a request, not {BusyPoll}.");
        }

        if (LoopThreads < 1 || LoopThreads > MaxLoopThreads)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(LoopThreads), $"A server runs 1 to {MaxLoopThreads} loop threads, not {LoopThreads}.");
        }

        return new IoreqServerOptions
        {
            Domain = Domain,
            Platform = Platform,
            RestrictHandlesToDomain = RestrictHandlesToDomain,
            BufferedMode = BufferedMode,
            LoggerFactory = LoggerFactory,
            GuestMemoryCacheFrames = GuestMemoryCacheFrames,
            GuestMemoryPinWindows = GuestMemoryPinWindows,
            MaxPostedWork = MaxPostedWork,
            MaxOffLoopWork = MaxOffLoopWork,
            LoopStallThreshold = LoopStallThreshold,
            BusyPoll = BusyPoll,
            LoopThreads = LoopThreads,
        };
    }
}
