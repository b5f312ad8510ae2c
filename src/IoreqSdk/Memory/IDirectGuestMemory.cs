namespace IoreqSdk.Memory;

/// <summary>
/// Guest RAM that can also give the host address of a mapped range, for structures a device touches at a high rate
/// and in place — virtqueue rings, whose indices must be read with acquire and written with release semantics,
/// which a copy cannot give. The address is valid only while <see cref="MappingGeneration"/> keeps the value it had
/// when the address was obtained, and only on the thread the memory belongs to (for a server's memory: its event loop).
/// </summary>
/// <remarks>
/// The server's guest memory (<see cref="Devices.IDeviceContext.Memory"/>) implements this interface: its map cache
/// maps guest frames one by one, so a range is given only when it lies inside one page. A mapping is dropped — and the
/// generation moves on — when the guest's physical map changes (Xen's INVALIDATE), when the cache evicts a frame to map
/// another, and when the server stops: compare the generation before every use of an address kept from before.
/// </remarks>
public interface IDirectGuestMemory : IGuestMemory
{
    /// <summary>Changes whenever a host address given out before may have stopped being valid. 64 bits: a guest that
    /// can move it (every INVALIDATE does) cannot wrap it back to a value a stale address was taken at.</summary>
    long MappingGeneration { get; }

    /// <summary>The host address of the guest range [<paramref name="address"/>, <paramref name="address"/> + <paramref name="length"/>), if it is RAM and mapped contiguously.</summary>
    /// <param name="address">The guest-physical address.</param>
    /// <param name="length">The byte count (1 or more).</param>
    /// <param name="hostAddress">Where the range is mapped in this process, until <see cref="MappingGeneration"/> changes.</param>
    /// <returns><see langword="false"/> if some byte is not RAM, or the range is not mapped contiguously (then use the copies).</returns>
    bool TryGetHostAddress(ulong address, int length, out nint hostAddress);
}
