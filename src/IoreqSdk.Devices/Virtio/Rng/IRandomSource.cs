using System;

namespace IoreqSdk.Devices.Virtio.Rng;

/// <summary>Where <see cref="VirtioRng"/> takes its bytes: <see cref="SystemRandomSource"/> unless a test gives its own.</summary>
public interface IRandomSource
{
    /// <summary>Fills <paramref name="destination"/> with random bytes. Called on the device's thread (the event loop): quick, and without allocating.</summary>
    /// <param name="destination">The bytes to fill (at most <see cref="VirtioRng.ScratchSize"/> at a time).</param>
    void Fill(Span<byte> destination);
}
