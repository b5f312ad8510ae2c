using IoreqSdk.Dispatch;

namespace IoreqSdk.Server;

/// <summary>
/// Counters of one server. Each loop thread writes its own (plain increments, no atomics on the fast path) — except the
/// refusals of work offered from other threads, which are atomic — and they may be read from any thread: a property
/// adds up every loop's counter (<see cref="IoreqServerOptions.LoopThreads"/>), and a reader sees each at some recent
/// moment.
/// </summary>
public sealed class IoreqServerStatistics
{
    /// <summary>The dispatcher's counters (it writes them; this publishes them).</summary>
    internal readonly DispatchCounters Requests = new();

    /// <summary>The guest-memory cache's counters (it writes them on the loop; this publishes them).</summary>
    internal readonly Memory.GuestMemoryCounters Memory = new();
    internal long Invalidate;
    internal long BufferedEntry;
    internal long SpuriousEvent;
    internal long PolledRequest;
    internal long PolledEvent;
    internal long LastRingDepth;
    internal long LoopOverrun;
    internal long RefusedPost;
    internal long RefusedWork;
    internal long HandedOffRequest;

    /// <summary>The request loops' own counters (set once, by the server's constructor), added to this one's by every property.</summary>
    internal IoreqServerStatistics[] Loops = [];

    /// <summary>Port I/O requests served.</summary>
    public long PioRequests => Total(static s => System.Threading.Volatile.Read(ref s.Requests.Pio));

    /// <summary>MMIO (<c>COPY</c>) requests served, synchronous and buffered.</summary>
    public long MmioRequests => Total(static s => System.Threading.Volatile.Read(ref s.Requests.Mmio));

    /// <summary>PCI configuration requests served.</summary>
    public long PciConfigRequests => Total(static s => System.Threading.Volatile.Read(ref s.Requests.PciConfig));

    /// <summary>INVALIDATE requests answered (each flushed the guest-memory cache first).</summary>
    public long InvalidateRequests => Total(static s => System.Threading.Volatile.Read(ref s.Invalidate));

    /// <summary>TIMEOFFSET notifications received.</summary>
    public long TimeOffsetRequests => Total(static s => System.Threading.Volatile.Read(ref s.Requests.TimeOffset));

    /// <summary>Requests of a type Xen does not define (answered with all-ones).</summary>
    public long UnknownRequests => Total(static s => System.Threading.Volatile.Read(ref s.Requests.Unknown));

    /// <summary>Requests with an impossible size, count or register (answered, not served).</summary>
    public long MalformedRequests => Total(static s => System.Threading.Volatile.Read(ref s.Requests.Malformed));

    /// <summary>Reads no device claimed (answered with all-ones).</summary>
    public long UnclaimedReads => Total(static s => System.Threading.Volatile.Read(ref s.Requests.UnclaimedRead));

    /// <summary>Writes no device claimed (dropped).</summary>
    public long UnclaimedWrites => Total(static s => System.Threading.Volatile.Read(ref s.Requests.UnclaimedWrite));

    /// <summary>Exceptions thrown by devices and by every other user callback the loop runs — posted work, work
    /// completions, <see cref="IoreqServer.TimeOffsetChanged"/> handlers — contained: requests were still answered.</summary>
    public long DeviceFaults => Total(static s => System.Threading.Volatile.Read(ref s.Requests.DeviceFault));

    /// <summary>String-I/O elements whose guest RAM side was not RAM (the rest of the request was dropped).</summary>
    public long GuestMemoryFaults => Total(static s => System.Threading.Volatile.Read(ref s.Requests.GuestMemoryFault));

    /// <summary>Buffered-ring entries consumed (an 8-byte pair counts once).</summary>
    public long BufferedEntries => Total(static s => System.Threading.Volatile.Read(ref s.BufferedEntry));

    /// <summary>Event notifications that found no request to serve.</summary>
    public long SpuriousEvents => Total(static s => System.Threading.Volatile.Read(ref s.SpuriousEvent));

    /// <summary>
    /// Synchronous requests a loop found by busy polling (<see cref="IoreqServerOptions.BusyPoll"/>) and served: its
    /// own vCPUs' requests served before their notification was delivered, and on the event loop the requests a request
    /// loop handed over while it spun. Each request is counted once, by the loop that served it.
    /// </summary>
    public long PolledRequests => Total(static s => System.Threading.Volatile.Read(ref s.PolledRequest));

    /// <summary>
    /// With <see cref="IoreqServerOptions.BusyPoll"/> on: notifications delivered after busy polling had served their
    /// requests (an event that finds no request is counted here then, not in <see cref="SpuriousEvents"/>).
    /// </summary>
    public long PolledEvents => Total(static s => System.Threading.Volatile.Read(ref s.PolledEvent));

    /// <summary>The buffered ring's depth seen at the last drain.</summary>
    public long RingDepth => System.Threading.Volatile.Read(ref LastRingDepth);

    /// <summary>Accesses of a width their region does not accept (reads answered all-ones, writes dropped).</summary>
    public long RefusedWidthAccesses => Total(static s => System.Threading.Volatile.Read(ref s.Requests.RefusedWidth));

    /// <summary>
    /// Times a device callback (a request's handler, posted work, a completion) held the event loop longer than
    /// <see cref="IoreqServerOptions.LoopStallThreshold"/>: every vCPU and device of the server waited meanwhile.
    /// Long work belongs off the loop (<see cref="Devices.IDeviceContext.TryRunOffLoop{TResult}"/>).
    /// </summary>
    public long LoopOverruns => Total(static s => System.Threading.Volatile.Read(ref s.LoopOverrun));

    /// <summary>Work refused by <see cref="Devices.IDeviceContext.TryPost"/> because the server's queue was full or the server had stopped.</summary>
    public long RefusedPosts => Total(static s => System.Threading.Volatile.Read(ref s.RefusedPost));

    /// <summary>Guest frames the map cache mapped (its misses; a guest whose DMA stays in a few pages maps them once).</summary>
    public long GuestFrameMaps => Total(static s => System.Threading.Volatile.Read(ref s.Memory.FrameMaps));

    /// <summary>Pieces of devices' buffers pinned for zero-copy I/O (<see cref="IoreqSdk.Memory.IPinnableGuestMemory"/>).</summary>
    public long GuestMemoryPins => Total(static s => System.Threading.Volatile.Read(ref s.Memory.Pins));

    /// <summary>256 KiB windows of guest RAM mapped for pins (see <see cref="IoreqServerOptions.GuestMemoryPinWindows"/>).</summary>
    public long GuestMemoryPinWindowMaps => Total(static s => System.Threading.Volatile.Read(ref s.Memory.PinWindowMaps));

    /// <summary>Pinned pieces mapped on their own, their window holding a frame that is not RAM.</summary>
    public long GuestMemoryPinPieceMaps => Total(static s => System.Threading.Volatile.Read(ref s.Memory.PinPieceMaps));

    /// <summary>Off-loop work refused by <see cref="Devices.IDeviceContext.TryRunOffLoop{TResult}"/> (the bound was reached or the server had stopped).</summary>
    public long RefusedOffLoopWork => Total(static s => System.Threading.Volatile.Read(ref s.RefusedWork));

    /// <summary>Requests a request loop handed to the event loop (<see cref="IoreqServerOptions.LoopThreads"/>): to a
    /// region not declared concurrent, string or PCI configuration forms, INVALIDATE, or behind buffered writes.</summary>
    public long HandedOffRequests => Total(static s => System.Threading.Volatile.Read(ref s.HandedOffRequest));

    private long Total(System.Func<IoreqServerStatistics, long> read)
    {
        long total = read(this);
        foreach (IoreqServerStatistics loop in Loops)
        {
            total += read(loop);
        }

        return total;
    }
}
