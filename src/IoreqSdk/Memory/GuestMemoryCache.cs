using System;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Memory;

/// <summary>
/// Guest RAM through a bounded cache of foreign page mappings (the role of QEMU's map cache and DEMU's per-page
/// maps). Direct-mapped by frame number: a hit is an array index and a compare; a miss maps one frame and evicts
/// whatever held the entry. Everything is dropped on <see cref="Invalidate"/> — Xen's INVALIDATE request — so no
/// mapping outlives a change of the guest's physical map. Not thread-safe, by design: used only from the server's
/// event-loop thread (devices reach it through a view that refuses other threads), which is also the thread that
/// answers INVALIDATE — so no access can race the flush, and no mapping is created after it. Pins
/// (<see cref="IPinnableGuestMemory"/>) are the exception, by design: their windows outlive the flush until released.
/// </summary>
internal sealed unsafe class GuestMemoryCache : IDirectGuestMemory, IPinnableGuestMemory, IDisposable
{

    private const int PageShift = 12;
    private const int PageSize = 1 << PageShift;

    private readonly IHypervisor _hypervisor;
    private readonly ushort _domain;
    private readonly ulong[] _frames;
    private readonly IMappedPages?[] _mappings;
    private readonly PinnedMappings _pins;
    private readonly GuestMemoryCounters _counters;
    private bool _disposed;
    private long _generation;

    public GuestMemoryCache(IHypervisor hypervisor, ushort domain, int capacity = 256, int pinWindows = 64, GuestMemoryCounters? counters = null)
    {
        if (capacity < 1)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(capacity), "The cache holds at least one frame.");
        }

        if (pinWindows < 1)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(pinWindows), "The cache maps at least one window for pinning.");
        }

        _hypervisor = hypervisor;
        _domain = domain;
        _frames = new ulong[capacity];
        _mappings = new IMappedPages?[capacity];
        _counters = counters ?? new GuestMemoryCounters();
        _pins = new PinnedMappings(hypervisor, domain, pinWindows, _counters);
    }

    /// <summary>The pinnable side's counters and state.</summary>
    public PinnedMappings PinnedMappings => _pins;

    /// <summary>How many frames are mapped now.</summary>
    public int MappedFrames
    {
        get
        {
            int count = 0;
            foreach (IMappedPages? mapping in _mappings)
            {
                count += mapping is null ? 0 : 1;
            }

            return count;
        }
    }

    /// <summary>Moves on whenever a mapping is dropped (INVALIDATE, an eviction, disposal): a host address from before may be stale.</summary>
    public long MappingGeneration => _generation;

    public bool TryGetHostAddress(ulong address, int length, out nint hostAddress)
    {
        hostAddress = 0;
        int offset = (int)(address & (PageSize - 1));
        if (length < 1 || length > PageSize - offset)
        {
            // Frames are mapped one by one: only a range inside one page is contiguous here.
            return false;
        }

        byte* page = Page(address >> PageShift);
        if (page is null)
        {
            return false;
        }

        hostAddress = (nint)(page + offset);
        return true;
    }

    public bool TryRead(ulong address, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            byte* page = Page(address >> PageShift);
            if (page is null)
            {
                return false;
            }

            int offset = (int)(address & (PageSize - 1));
            int chunk = Math.Min(destination.Length, PageSize - offset);
            HostCopy.Copy(new ReadOnlySpan<byte>(page + offset, chunk), destination);
            destination = destination.Slice(chunk);
            address += (ulong)chunk;
        }

        return true;
    }

    public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        while (!source.IsEmpty)
        {
            byte* page = Page(address >> PageShift);
            if (page is null)
            {
                return false;
            }

            int offset = (int)(address & (PageSize - 1));
            int chunk = Math.Min(source.Length, PageSize - offset);
            HostCopy.Copy(source.Slice(0, chunk), new Span<byte>(page + offset, chunk));
            source = source.Slice(chunk);
            address += (ulong)chunk;
        }

        return true;
    }

    public bool TryPin(ulong address, int length, out HostBuffer buffer, out GuestMemoryPin pin) =>
        _pins.TryPin(address, length, out buffer, out pin);

    /// <summary>Unmaps every cached frame, and every pinnable window no pin holds (held ones at their release).</summary>
    public void Invalidate()
    {
        _generation++;
        _pins.Invalidate();
        for (int i = 0; i < _mappings.Length; i++)
        {
            IMappedPages? mapping = _mappings[i];
            if (mapping is not null)
            {
                _mappings[i] = null;
                try
                {
                    mapping.Dispose();
                }
                catch (HypervisorException)
                {
                    // One failed unmap must not keep the others mapped (nor escape the loop thread answering INVALIDATE).
                }
            }
        }
    }

    /// <summary>Unmaps everything; afterwards nothing is mapped again (accesses fail), so nothing can leak.</summary>
    public void Dispose()
    {
        _disposed = true;
        _pins.Close();
        Invalidate();
    }

    private byte* Page(ulong frame)
    {
        // A guest address above 2^64 - 4096 wraps the frame number; such frames are never RAM and fail to map.
        int slot = (int)(frame % (ulong)_frames.Length);
        IMappedPages? mapping = _mappings[slot];
        if (mapping is not null && _frames[slot] == frame)
        {
            return (byte*)mapping.Address;
        }

        if (_disposed)
        {
            return null;
        }

        IMappedPages? fresh;
        try
        {
            fresh = _hypervisor.MapGuestFrames(_domain, frame, 1, writable: true);
        }
        catch (HypervisorException)
        {
            // Not guest RAM (or not mappable): the caller reports the access as failed.
            return null;
        }

        if (mapping is not null)
        {
            // The evicted frame's host address dies here: whoever kept it must look it up again.
            _generation++;
            mapping.Dispose();
        }

        _counters.FrameMaps++;
        _mappings[slot] = fresh;
        _frames[slot] = frame;
        return (byte*)fresh.Address;
    }
}
