using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Memory;

/// <summary>
/// One mapping of guest frames that pins can hold: a 256 KiB window of the pin table, or a one-off mapping of a
/// piece the table could not serve. Pinned on the loop, released from any thread, dropped (taken out of use) on the
/// loop; whichever of the last release and the drop comes second unmaps it.
/// </summary>
internal sealed class PinnedMapping
{
    // The pin count in the low bits, and this bit once the mapping is dropped: the one state word makes "dropped and
    // no pin left" a single transition, which exactly one thread — the dropper or the last releaser — observes.
    private const int Dropped = 1 << 30;

    private readonly IMappedPages _pages;
    private readonly PinnedMappings? _owner;
    private int _state;

    // Set (on the loop) before the mapping can outlive its place in the table: its frames then count against the
    // owner's budget of detached frames until the unmap, on whichever thread it happens, gives them back.
    private bool _detached;

    public PinnedMapping(IMappedPages pages, ulong firstFrame, PinnedMappings? owner, bool oneOff)
    {
        _pages = pages;
        _owner = owner;
        FirstFrame = firstFrame;
        if (oneOff)
        {
            // A one-off mapping is never in the table: born dropped and detached, with the pin it was made for.
            _detached = true;
            owner?.AddDetached(pages.PageCount);
            _state = Dropped | 1;
        }
    }

    /// <summary>The guest frame mapped at <see cref="Address"/>.</summary>
    public ulong FirstFrame { get; }

    public int PageCount => _pages.PageCount;

    public nint Address => _pages.Address;

    /// <summary>How many pins hold the mapping now (read on the loop, where pins are taken: it cannot rise meanwhile).</summary>
    public int PinCount => Volatile.Read(ref _state) & ~Dropped;

    /// <summary>Whether the mapping left the table (or never was in it) and is unmapped at its last release.</summary>
    public bool IsDropped => (Volatile.Read(ref _state) & Dropped) != 0;

    /// <summary>Adds a pin (the loop, on a mapping still in the table).</summary>
    public GuestMemoryPin Pin()
    {
        // Atomic: a worker may be releasing another pin of the same mapping at the same moment.
        Interlocked.Increment(ref _state);
        return new GuestMemoryPin(this);
    }

    /// <summary>Gives a pin back (any thread).</summary>
    public void Release()
    {
        // Full fence (interlocked): the releasing thread's accesses to the memory come before the count drops, so the
        // unmap that may follow on another thread (the dropper's) cannot overtake them.
        if (Interlocked.Decrement(ref _state) == Dropped)
        {
            Unmap();
        }
    }

    /// <summary>Takes the mapping out of use (the loop, once, as it leaves the table): unmapped now if no pin holds it.</summary>
    public void Drop()
    {
        if (PinCount != 0 && !_detached)
        {
            // Pinned: it may outlive the table. Counted before the state says dropped, so the unmap — which may come
            // from a worker the moment the bit is set — always has frames to give back (the flag is read there after
            // the interlocked transition that follows this write).
            _detached = true;
            _owner?.AddDetached(_pages.PageCount);
        }

        int state = Volatile.Read(ref _state);
        while (true)
        {
            int seen = Interlocked.CompareExchange(ref _state, state | Dropped, state);
            if (seen == state)
            {
                break;
            }

            state = seen;
        }

        if (state == 0)
        {
            Unmap();
        }
    }

    private void Unmap()
    {
        try
        {
            _pages.Dispose();
        }
        catch (HypervisorException)
        {
            // Nothing may escape a worker thread or the loop's INVALIDATE; the address is never used again either way.
        }

        if (_detached)
        {
            _owner?.AddDetached(-_pages.PageCount);
        }
    }
}
