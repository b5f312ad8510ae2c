using IoreqSdk.Dispatch;

namespace IoreqSdk.Server;

/// <summary>
/// Counters of one server. They are written by the server's event loop only (plain increments, no atomics on the
/// fast path) — except the refusals of work offered from other threads, which are atomic — and may be read from any
/// thread; a reader sees each counter's value at some recent moment.
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

    /// <summary>Port I/O requests served.</summary>
    public long PioRequests => System.Threading.Volatile.Read(ref Requests.Pio);

    /// <summary>MMIO (<c>COPY</c>) requests served, synchronous and buffered.</summary>
    public long MmioRequests => System.Threading.Volatile.Read(ref Requests.Mmio);

    /// <summary>PCI configuration requests served.</summary>
    public long PciConfigRequests => System.Threading.Volatile.Read(ref Requests.PciConfig);

    /// <summary>INVALIDATE requests answered (each flushed the guest-memory cache first).</summary>
    public long InvalidateRequests => System.Threading.Volatile.Read(ref Invalidate);

    /// <summary>TIMEOFFSET notifications received.</summary>
    public long TimeOffsetRequests => System.Threading.Volatile.Read(ref Requests.TimeOffset);

    /// <summary>Requests of a type Xen does not define (answered with all-ones).</summary>
    public long UnknownRequests => System.Threading.Volatile.Read(ref Requests.Unknown);

    /// <summary>Requests with an impossible size, count or register (answered, not served).</summary>
    public long MalformedRequests => System.Threading.Volatile.Read(ref Requests.Malformed);

    /// <summary>Reads no device claimed (answered with all-ones).</summary>
    public long UnclaimedReads => System.Threading.Volatile.Read(ref Requests.UnclaimedRead);

    /// <summary>Writes no device claimed (dropped).</summary>
    public long UnclaimedWrites => System.Threading.Volatile.Read(ref Requests.UnclaimedWrite);

    /// <summary>Exceptions thrown by devices and by every other user callback the loop runs — posted work, work
    /// completions, <see cref="IoreqServer.TimeOffsetChanged"/> handlers — contained: requests were still answered.</summary>
    public long DeviceFaults => System.Threading.Volatile.Read(ref Requests.DeviceFault);

    /// <summary>String-I/O elements whose guest RAM side was not RAM (the rest of the request was dropped).</summary>
    public long GuestMemoryFaults => System.Threading.Volatile.Read(ref Requests.GuestMemoryFault);

    /// <summary>Buffered-ring entries consumed (an 8-byte pair counts once).</summary>
    public long BufferedEntries => System.Threading.Volatile.Read(ref BufferedEntry);

    /// <summary>Event notifications that found no request to serve.</summary>
    public long SpuriousEvents => System.Threading.Volatile.Read(ref SpuriousEvent);

    /// <summary>
    /// Synchronous requests the event loop found by busy polling (<see cref="IoreqServerOptions.BusyPoll"/>), served
    /// before their notification was delivered.
    /// </summary>
    public long PolledRequests => System.Threading.Volatile.Read(ref PolledRequest);

    /// <summary>
    /// With <see cref="IoreqServerOptions.BusyPoll"/> on: notifications delivered after busy polling had served their
    /// requests (an event that finds no request is counted here then, not in <see cref="SpuriousEvents"/>).
    /// </summary>
    public long PolledEvents => System.Threading.Volatile.Read(ref PolledEvent);

    /// <summary>The buffered ring's depth seen at the last drain.</summary>
    public long RingDepth => System.Threading.Volatile.Read(ref LastRingDepth);

    /// <summary>Accesses of a width their region does not accept (reads answered all-ones, writes dropped).</summary>
    public long RefusedWidthAccesses => System.Threading.Volatile.Read(ref Requests.RefusedWidth);

    /// <summary>
    /// Times a device callback (a request's handler, posted work, a completion) held the event loop longer than
    /// <see cref="IoreqServerOptions.LoopStallThreshold"/>: every vCPU and device of the server waited meanwhile.
    /// Long work belongs off the loop (<see cref="Devices.IDeviceContext.TryRunOffLoop{TResult}"/>).
    /// </summary>
    public long LoopOverruns => System.Threading.Volatile.Read(ref LoopOverrun);

    /// <summary>Work refused by <see cref="Devices.IDeviceContext.TryPost"/> because the server's queue was full or the server had stopped.</summary>
    public long RefusedPosts => System.Threading.Volatile.Read(ref RefusedPost);

    /// <summary>Guest frames the map cache mapped (its misses; a guest whose DMA stays in a few pages maps them once).</summary>
    public long GuestFrameMaps => System.Threading.Volatile.Read(ref Memory.FrameMaps);

    /// <summary>Pieces of devices' buffers pinned for zero-copy I/O (<see cref="IoreqSdk.Memory.IPinnableGuestMemory"/>).</summary>
    public long GuestMemoryPins => System.Threading.Volatile.Read(ref Memory.Pins);

    /// <summary>256 KiB windows of guest RAM mapped for pins (see <see cref="IoreqServerOptions.GuestMemoryPinWindows"/>).</summary>
    public long GuestMemoryPinWindowMaps => System.Threading.Volatile.Read(ref Memory.PinWindowMaps);

    /// <summary>Pinned pieces mapped on their own, their window holding a frame that is not RAM.</summary>
    public long GuestMemoryPinPieceMaps => System.Threading.Volatile.Read(ref Memory.PinPieceMaps);

    /// <summary>Off-loop work refused by <see cref="Devices.IDeviceContext.TryRunOffLoop{TResult}"/> (the bound was reached or the server had stopped).</summary>
    public long RefusedOffLoopWork => System.Threading.Volatile.Read(ref RefusedWork);
}
