using System;
using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Memory;

/// <summary>
/// The map cache's pinnable side: guest RAM mapped a 256 KiB window at a time, direct-mapped by window number, each
/// window kept mapped for the next pin until it is evicted, invalidated or the server stops. Loop-only, except the
/// release of a pin (<see cref="PinnedMapping"/>).
/// </summary>
/// <remarks>
/// What a guest can make the server map is bounded: the table's windows, plus <em>detached</em> frames — pinned
/// windows an INVALIDATE or the stop took out of the table, and one-off mappings of pieces the table could not serve
/// (a window holding a frame that is not RAM, or a slot whose window is still pinned: a pinned window is never
/// evicted) — at most as many frames as the table holds. A pin that would exceed that is refused, and the device falls
/// back to its copies.
/// </remarks>
internal sealed class PinnedMappings
{
    private const int PageShift = 12;
    private const int WindowShift = 6;
    private const int WindowFrames = 1 << WindowShift;
    private const ulong WindowBytes = (ulong)WindowFrames << PageShift;

    private readonly IHypervisor _hypervisor;
    private readonly ushort _domain;
    private readonly PinnedMapping?[] _windows;
    private readonly ulong[] _windowNumbers;
    private readonly GuestMemoryCounters _counters;

    // A window that did not map whole (it holds a frame that is not RAM: a hole, a ballooned page) is not tried again
    // until the next invalidation: its pieces are mapped one by one instead.
    private readonly ulong[] _unmappableWindows;
    private readonly bool[] _unmappableValid;
    private readonly int _detachedBudget;
    private int _detachedFrames;
    private bool _closed;

    public PinnedMappings(IHypervisor hypervisor, ushort domain, int windows, GuestMemoryCounters counters)
    {
        _counters = counters;
        _hypervisor = hypervisor;
        _domain = domain;
        _windows = new PinnedMapping?[windows];
        _windowNumbers = new ulong[windows];
        _unmappableWindows = new ulong[windows];
        _unmappableValid = new bool[windows];
        _detachedBudget = windows * WindowFrames;
    }

    /// <summary>Frames mapped outside the table now (pinned windows dropped meanwhile, one-off pieces).</summary>
    public int DetachedFrames => Volatile.Read(ref _detachedFrames);

    /// <summary>Windows in the table now (held or cached; dropped windows still held are in <see cref="DetachedFrames"/>).</summary>
    public int MappedWindows
    {
        get
        {
            int count = 0;
            foreach (PinnedMapping? window in _windows)
            {
                count += window is null ? 0 : 1;
            }

            return count;
        }
    }

    /// <summary>Pins taken (each piece of a request's buffer counts one).</summary>
    public long Pins => _counters.Pins;

    /// <summary>Windows mapped (a pin that found its window unmapped).</summary>
    public long WindowMaps => _counters.PinWindowMaps;

    /// <summary>One-off mappings of a piece whose window did not map whole.</summary>
    public long PieceMaps => _counters.PinPieceMaps;

    public bool TryPin(ulong address, int length, out HostBuffer buffer, out GuestMemoryPin pin)
    {
        buffer = default;
        pin = default;
        if (_closed || length < 1 || address > ulong.MaxValue - WindowBytes)
        {
            // The last window of the address space is never RAM; refusing it keeps the window arithmetic from wrapping.
            return false;
        }

        ulong window = address >> (PageShift + WindowShift);
        ulong windowStart = window << (PageShift + WindowShift);
        int take = (int)Math.Min((ulong)length, windowStart + WindowBytes - address);
        int slot = (int)(window % (ulong)_windows.Length);
        PinnedMapping? mapping = _windows[slot];
        if (mapping is null || _windowNumbers[slot] != window)
        {
            // A pinned window keeps its slot (evicting it would leave it mapped beside its successor, and a guest
            // alternating between two windows of one slot would map them again and again): the piece goes one-off.
            bool slotHeld = mapping is not null && mapping.PinCount != 0;
            bool unmappable = _unmappableValid[slot] && _unmappableWindows[slot] == window;
            mapping = slotHeld || unmappable ? null : MapWindow(window, slot);
            if (mapping is null)
            {
                return TryPinPiece(address, take, out buffer, out pin);
            }
        }

        _counters.Pins++;
        pin = mapping.Pin();
        buffer = new HostBuffer(mapping.Address + (nint)(address - windowStart), take);
        return true;
    }

    /// <summary>Drops every window (INVALIDATE): unpinned ones are unmapped now, pinned ones at their last release.</summary>
    public void Invalidate()
    {
        for (int i = 0; i < _windows.Length; i++)
        {
            PinnedMapping? window = _windows[i];
            _windows[i] = null;
            _unmappableValid[i] = false;
            window?.Drop();
        }
    }

    /// <summary>As <see cref="Invalidate"/>, and nothing is pinned afterwards.</summary>
    public void Close()
    {
        _closed = true;
        Invalidate();
    }

    private PinnedMapping? MapWindow(ulong window, int slot)
    {
        ulong firstFrame = window << WindowShift;
        IMappedPages pages;
        try
        {
            pages = _hypervisor.MapGuestFrames(_domain, firstFrame, WindowFrames, writable: true);
        }
        catch (HypervisorException e)
        {
            // A frame that is not RAM makes the window unmappable until the next INVALIDATE; a transient failure
            // (the host short of memory) does not.
            if (e.ErrorNumber is not (Errno.ENOMEM or Errno.EAGAIN))
            {
                _unmappableWindows[slot] = window;
                _unmappableValid[slot] = true;
            }

            return null;
        }

        // The window that held the slot (no pin holds it: TryPin checked) leaves the table and is unmapped now.
        _windows[slot]?.Drop();
        var mapping = new PinnedMapping(pages, firstFrame, this, oneOff: false);
        _windows[slot] = mapping;
        _windowNumbers[slot] = window;
        _counters.PinWindowMaps++;
        return mapping;
    }

    /// <summary>Frames that went out of the table mapped (+) or were unmapped (−), from any thread.</summary>
    internal void AddDetached(int frames) => Interlocked.Add(ref _detachedFrames, frames);

    /// <summary>Maps just the frames of one piece, for one pin: its window holds a frame that is not RAM, or its slot a pinned window.</summary>
    private bool TryPinPiece(ulong address, int length, out HostBuffer buffer, out GuestMemoryPin pin)
    {
        buffer = default;
        pin = default;
        ulong firstFrame = address >> PageShift;
        int frames = (int)(((address + (ulong)length - 1) >> PageShift) - firstFrame + 1);
        if (Volatile.Read(ref _detachedFrames) + frames > _detachedBudget)
        {
            // The guest holds as much outside the table as the table itself: this piece goes through the copies.
            return false;
        }

        IMappedPages pages;
        try
        {
            pages = _hypervisor.MapGuestFrames(_domain, firstFrame, frames, writable: true);
        }
        catch (HypervisorException)
        {
            return false;
        }

        _counters.PinPieceMaps++;
        _counters.Pins++;
        var mapping = new PinnedMapping(pages, firstFrame, this, oneOff: true);
        pin = new GuestMemoryPin(mapping);
        buffer = new HostBuffer(mapping.Address + (nint)(address & ((1UL << PageShift) - 1)), length);
        return true;
    }
}
