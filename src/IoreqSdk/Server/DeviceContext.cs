using System;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Memory;

namespace IoreqSdk.Server;

/// <summary>What a device of the server reaches: its regions' mapping (through the server's rules), posted and
/// off-loop work (the loop's), and guest memory (the loop's map cache, on the loop only).</summary>
internal sealed class DeviceContext : IDeviceContext, ILoopAffinity
{
    private readonly IoreqServer _server;
    private readonly LoopWork _work;

    public DeviceContext(IoreqServer server, EventLoop loop, GuestMemoryCache memory)
    {
        _server = server;
        _work = loop.Work;
        Memory = new LoopGuestMemory(loop, memory);
    }

    public IGuestMemory Memory { get; }

    public long RunNumber => _work.Run;

    public void MapRegion(DeviceRegion region, ulong address) => _server.MapRegion(region, region.Kind, address);

    public void UnmapRegion(DeviceRegion region) => _server.UnmapRegion(region);

    public void Post(Action work)
    {
        if (!_work.TryPost(work) && _work.AcceptingPosts)
        {
            ThrowHelper.ThrowInvalidOperation($"The server's posted-work queue is full ({_work.MaxPostedWork} items); use TryPost to handle a full queue.");
        }
    }

    public bool TryPost(Action work) => _work.TryPost(work);

    public void ThrowIfOffLoop(string what) => _server.ThrowIfRunningOffLoop(what);

    public bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion) =>
        _work.TryRunOffLoop(work, completion);

    public bool TryRunOffLoop(OffLoopWork work) => _work.TryRunOffLoop(work);

    public IOffLoopWorker CreateOffLoopWorker(string name, int threadCount, int capacity) => _work.CreateWorker(name, threadCount, capacity);

    /// <summary>
    /// Guest memory as devices see it: the loop's map cache, refused from any other thread. The cache is what the loop
    /// flushes on INVALIDATE; used concurrently from another thread, a mapping made after the flush would outlive the
    /// guest's physmap change (a leaked foreign mapping on Xen) and one evicted meanwhile would be a use after unmap.
    /// </summary>
    private sealed class LoopGuestMemory : IDirectGuestMemory, IPinnableGuestMemory
    {
        private readonly EventLoop _loop;
        private readonly GuestMemoryCache _memory;

        public LoopGuestMemory(EventLoop loop, GuestMemoryCache memory)
        {
            _loop = loop;
            _memory = memory;
        }

        public long MappingGeneration
        {
            get
            {
                ThrowIfOffLoop();
                return _memory.MappingGeneration;
            }
        }

        public bool TryGetHostAddress(ulong address, int length, out nint hostAddress)
        {
            ThrowIfOffLoop();
            return _memory.TryGetHostAddress(address, length, out hostAddress);
        }

        public bool TryPin(ulong address, int length, out HostBuffer buffer, out GuestMemoryPin pin)
        {
            ThrowIfOffLoop();
            return _memory.TryPin(address, length, out buffer, out pin);
        }

        public bool TryRead(ulong address, Span<byte> destination)
        {
            ThrowIfOffLoop();
            return _memory.TryRead(address, destination);
        }

        public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
        {
            ThrowIfOffLoop();
            return _memory.TryWrite(address, source);
        }

        private void ThrowIfOffLoop()
        {
            if (!_loop.IsLoopThread)
            {
                ThrowHelper.ThrowInvalidOperation("Guest memory is reached from the server's event-loop thread only, while it runs (a device handler, posted work or an off-loop completion). Copy in the completion of TryRunOffLoop, or Post the access.");
            }
        }
    }
}
