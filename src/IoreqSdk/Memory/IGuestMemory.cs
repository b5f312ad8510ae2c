using System;

namespace IoreqSdk.Memory;

/// <summary>
/// The guest's RAM as a device sees it (DMA, and the RAM side of string I/O). Accesses may cross page boundaries.
/// A guest-supplied address may name no RAM at all, so failure is a result, not an exception.
/// </summary>
/// <remarks>
/// The instance a device gets from <see cref="Devices.IDeviceContext.Memory"/> is used on its server's event loop
/// only, while the server runs; from any other thread it throws <see cref="InvalidOperationException"/> (the loop owns
/// the foreign mappings and drops them when the guest's physical map changes).
/// </remarks>
public interface IGuestMemory
{
    /// <summary>Copies guest RAM out.</summary>
    /// <param name="address">The guest-physical address.</param>
    /// <param name="destination">Where to copy to; its length is the byte count.</param>
    /// <returns><see langword="false"/> if any byte is not guest RAM (nothing is guaranteed about <paramref name="destination"/> then).</returns>
    bool TryRead(ulong address, Span<byte> destination);

    /// <summary>Copies into guest RAM.</summary>
    /// <param name="address">The guest-physical address.</param>
    /// <param name="source">What to copy; its length is the byte count.</param>
    /// <returns><see langword="false"/> if any byte is not guest RAM (a prefix may have been written).</returns>
    bool TryWrite(ulong address, ReadOnlySpan<byte> source);
}
