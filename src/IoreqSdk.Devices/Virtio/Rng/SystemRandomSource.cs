using System;
using System.Security.Cryptography;

namespace IoreqSdk.Devices.Virtio.Rng;

/// <summary>The operating system's cryptographic random number generator (<see cref="RandomNumberGenerator"/>), as Linux's <c>getrandom</c> serves QEMU's default virtio-rng backend.</summary>
public sealed class SystemRandomSource : IRandomSource
{
#if NETSTANDARD2_0
    private const int Chunk = 4096;

    // netstandard2.0's generator fills arrays only: one per thread, reused, so a fill allocates nothing.
    [ThreadStatic]
    private static byte[]? s_chunk;

    private static readonly RandomNumberGenerator s_generator = RandomNumberGenerator.Create();
#endif

    private SystemRandomSource()
    {
    }

    /// <summary>The one instance (it holds no state of its own).</summary>
    public static SystemRandomSource Instance { get; } = new();

    /// <inheritdoc/>
    public void Fill(Span<byte> destination)
    {
#if NETSTANDARD2_0
        byte[] chunk = s_chunk ??= new byte[Chunk];
        while (!destination.IsEmpty)
        {
            int count = Math.Min(chunk.Length, destination.Length);

            // RandomNumberGenerator's instance methods are thread-safe for the platform generator Create returns.
            s_generator.GetBytes(chunk, 0, count);
            chunk.AsSpan(0, count).CopyTo(destination);
            destination = destination.Slice(count);
        }

        Array.Clear(chunk, 0, chunk.Length);
#else
        RandomNumberGenerator.Fill(destination);
#endif
    }
}
