namespace IoreqSdk.Memory;

/// <summary>
/// Keeps a piece of guest RAM mapped in this process until <see cref="Release"/> — across an INVALIDATE, an
/// eviction or the server's stop — so that another thread may read or write it (a block device's worker doing
/// <c>preadv</c> straight into a guest buffer). Given by <see cref="IPinnableGuestMemory.TryPin"/>.
/// </summary>
/// <remarks>
/// Release it exactly once, from any thread, when nothing touches the memory any more; copies of the value are the
/// same pin. A default value holds nothing (its release does nothing). Releasing one pin twice releases someone else's.
/// </remarks>
public readonly struct GuestMemoryPin
{
    private readonly PinnedMapping? _mapping;

    internal GuestMemoryPin(PinnedMapping mapping) => _mapping = mapping;

    /// <summary>Whether the value holds a pin (a default value does not).</summary>
    public bool IsPinned => _mapping is not null;

    /// <summary>Gives the pin back; the last one out of a mapping dropped meanwhile (INVALIDATE, eviction, stop) unmaps it.</summary>
    public void Release() => _mapping?.Release();
}
