using System;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.Security.Cryptography;
using System.Threading;

namespace IoreqSdk.Devices.Virtio.Rng;

/// <summary>
/// The operating system's random number generator: on Linux the kernel's own, read from <c>/dev/urandom</c> (the pool
/// <c>getrandom</c> serves, as it serves QEMU's default virtio-rng backend); where that device cannot be opened,
/// <see cref="RandomNumberGenerator"/>.
/// </summary>
/// <remarks>
/// Not <see cref="RandomNumberGenerator"/> on Linux: .NET reaches the kernel's generator there through OpenSSL, and a
/// minimal dom0 (an initramfs, a driver domain) may carry no libssl. The runtime then aborts the process at the first
/// fill — found on real Xen, where the abort also left the ioreq server behind and the guest's vCPU waiting on it.
/// </remarks>
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "The one instance lives as long as the process, as its open device does; the streams are the kernel's to close at exit.")]
public sealed class SystemRandomSource : IRandomSource
{
    private const string KernelDevice = "/dev/urandom";

    // One unbuffered stream per thread (a loop's): a FileStream is not safe to share between threads, and this keeps a
    // fill free of locks and allocations once the thread's stream exists.
    private readonly ThreadLocal<FileStream?> _streams;

#if NETSTANDARD2_0
    private const int Chunk = 4096;

    // netstandard2.0's streams and generator fill arrays only: one per thread, reused, so a fill allocates nothing.
    [ThreadStatic]
    private static byte[]? s_chunk;

    private static readonly RandomNumberGenerator s_generator = RandomNumberGenerator.Create();
#endif

    private SystemRandomSource()
        : this(KernelDevice)
    {
    }

    /// <summary>A source that reads <paramref name="devicePath"/> (tests give a file of known bytes).</summary>
    internal SystemRandomSource(string devicePath)
    {
        DevicePath = devicePath;
        _streams = new ThreadLocal<FileStream?>(Open);
    }

    /// <summary>The one instance (it holds no state of its own but the open device).</summary>
    public static SystemRandomSource Instance { get; } = new();

    /// <summary>The device file the bytes come from, when it can be opened.</summary>
    internal string DevicePath { get; }

    /// <inheritdoc/>
    public void Fill(Span<byte> destination)
    {
        FileStream? stream = _streams.Value;
#if NETSTANDARD2_0
        byte[] chunk = s_chunk ??= new byte[Chunk];
        while (!destination.IsEmpty)
        {
            int count = Math.Min(chunk.Length, destination.Length);
            if (stream is null)
            {
                // RandomNumberGenerator's instance methods are thread-safe for the platform generator Create returns.
                s_generator.GetBytes(chunk, 0, count);
            }
            else
            {
                count = Read(stream, chunk, count);
            }

            chunk.AsSpan(0, count).CopyTo(destination);
            destination = destination.Slice(count);
        }

        Array.Clear(chunk, 0, chunk.Length);
#else
        if (stream is null)
        {
            RandomNumberGenerator.Fill(destination);
            return;
        }

        while (!destination.IsEmpty)
        {
            int read = stream.Read(destination);
            if (read <= 0)
            {
                ThrowEnded(DevicePath);
            }

            destination = destination.Slice(read);
        }
#endif
    }

#if NETSTANDARD2_0
    private int Read(FileStream stream, byte[] chunk, int count)
    {
        int read = stream.Read(chunk, 0, count);
        if (read <= 0)
        {
            ThrowEnded(DevicePath);
        }

        return read;
    }
#endif

    // Out of line: the fill's loop stays small (the event loop calls it).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ThrowEnded(string path) => throw new IOException($"{path} ended: no random bytes to read.");

    /// <summary>The calling thread's stream on the device; null (the runtime's generator instead) when it cannot be opened.</summary>
    private FileStream? Open()
    {
        try
        {
            // bufferSize 1: no read-ahead, so no random bytes sit in a buffer longer than needed.
            return new FileStream(DevicePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return null;
        }
    }
}
