using System;
using System.IO;
using System.Runtime.InteropServices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;
using Microsoft.Win32.SafeHandles;

namespace IoreqSdk.Storage;

/// <summary>
/// A raw disk image (a regular file or a block device) read and written at offsets — <c>pread</c>, <c>pwrite</c>,
/// <c>fdatasync</c>, <c>fallocate</c> on its descriptor, no stream, no file position, nothing allocated per call — so
/// that several threads may use it at once and a block device's requests go straight between the file and the
/// device's buffers.
/// </summary>
/// <remarks>
/// <para>
/// One code path for both targets: <c>RandomAccess</c> exists only on .NET 6 and later, and punching holes has no
/// .NET API at all, so the calls are the SDK's own P/Invokes (as its Xen calls are), on netstandard2.0 and net10.0
/// alike. Linux only, as the SDK.
/// </para>
/// <para>
/// The calls block: use them off the event loop (in <see cref="Devices.OffLoopWork.Execute"/>). Failures throw
/// <see cref="IOException"/> naming the errno; the success path allocates nothing.
/// </para>
/// </remarks>
public sealed class RawImageFile : IDisposable
{
    // ENOSYS: a kernel without fallocate; EOPNOTSUPP, ENODEV: a file system or device without the mode.
    private const int ENOSYS = 38;

    // EISDIR: the probe read of a directory opened read-only; ESPIPE: lseek on a FIFO, a socket or a terminal.
    private const int EISDIR = 21;
    private const int ESPIPE = 29;

    private readonly SafeFileHandle _handle;

    private unsafe RawImageFile(string path, bool readOnly)
    {
        // The SDK's own open(2), with O_NONBLOCK: a FIFO's open would otherwise wait for a writer forever, so a path
        // that a user or the toolstack got wrong would hang its caller (the backend service's loop: found by the
        // xenstore fuzz target). On a regular file or a block device the flag has no effect (open(2)); what does not
        // seek is refused below, before any I/O.
        _ = NativeText.TryEncodeTerminated(path, out byte[] name); // Open refused a path holding a NUL.
        int descriptor;
        fixed (byte* start = name)
        {
            descriptor = Interop.Libc.Open(start, (readOnly ? Interop.Libc.O_RDONLY : Interop.Libc.O_RDWR) | Interop.Libc.O_NONBLOCK | Interop.Libc.O_CLOEXEC);
        }

        if (descriptor < 0)
        {
            int errno = Marshal.GetLastWin32Error();
            if (errno == Errno.EACCES || errno == Errno.EPERM)
            {
                throw new UnauthorizedAccessException($"open on {path} failed: permission denied (errno {errno}).");
            }

            throw errno == Errno.ENOENT ? new FileNotFoundException($"open on {path} failed: no such file (errno {errno}).", path) : Error("open", path, errno);
        }

        _handle = new SafeFileHandle((IntPtr)descriptor, ownsHandle: true);
        IsReadOnly = readOnly;
        Path = path;
        try
        {
            long length = Interop.Libc.LSeek(Descriptor, 0, Interop.Libc.SEEK_END);
            if (length < 0)
            {
                int errno = Marshal.GetLastWin32Error();
                throw errno == ESPIPE ? new IOException($"{path} is not a disk image: it does not seek (a FIFO, a socket or a terminal).", errno) : Error("lseek", path, errno);
            }

            // A directory opens read-only and may even seek; its first read says what it is.
            byte probe;
            if (Interop.Libc.PRead(Descriptor, &probe, 1, 0) < 0 && Marshal.GetLastWin32Error() == EISDIR)
            {
                throw new IOException($"{path} is not a disk image: it is a directory.", EISDIR);
            }

            Length = length;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The path the image was opened from.</summary>
    public string Path { get; }

    /// <summary>The image's length in bytes, when it was opened.</summary>
    public long Length { get; }

    /// <summary>Whether the image was opened for reading only.</summary>
    public bool IsReadOnly { get; }

    private int Descriptor => (int)_handle.DangerousGetHandle();

    /// <summary>Opens an existing image.</summary>
    /// <param name="path">The file or block device.</param>
    /// <param name="readOnly">Whether to open it for reading only (writes then fail with <see cref="IOException"/>).</param>
    /// <returns>The open image.</returns>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty or holds a NUL character (open(2) would act on its prefix).</exception>
    /// <exception cref="FileNotFoundException">Nothing is at <paramref name="path"/>.</exception>
    /// <exception cref="UnauthorizedAccessException">The file may not be opened so.</exception>
    /// <exception cref="IOException">It is not an image (a directory, or a FIFO, socket or terminal: what does not seek), or the open failed otherwise; never blocks waiting for a FIFO's writer.</exception>
    public static RawImageFile Open(string path, bool readOnly)
    {
        if (string.IsNullOrEmpty(path))
        {
            ThrowHelper.ThrowArgument(nameof(path), "A path is required.");
        }

        if (path.AsSpan().IndexOf('\0') >= 0)
        {
            // open(2) would stop at the NUL and open whatever the prefix names.
            ThrowHelper.ThrowArgument(nameof(path), "A path holds no NUL character.");
        }

        return new RawImageFile(path, readOnly);
    }

    /// <summary>Reads at <paramref name="offset"/> until <paramref name="destination"/> is full or the file ends.</summary>
    /// <param name="offset">The byte offset in the file.</param>
    /// <param name="destination">Where to read to.</param>
    /// <returns>The bytes read: less than the span's length only at the end of the file.</returns>
    public unsafe int ReadAt(long offset, Span<byte> destination)
    {
        fixed (byte* start = destination)
        {
            return Transfer(offset, start, destination.Length, write: false);
        }
    }

    /// <summary>Writes all of <paramref name="source"/> at <paramref name="offset"/>.</summary>
    /// <param name="offset">The byte offset in the file.</param>
    /// <param name="source">What to write.</param>
    public unsafe void WriteAt(long offset, ReadOnlySpan<byte> source)
    {
        fixed (byte* start = source)
        {
            Transfer(offset, start, source.Length, write: true);
        }
    }

    /// <summary>
    /// Reads at <paramref name="offset"/> into the buffers in order (<c>preadv</c>: one call for the lot, up to 1024
    /// buffers a call) until they are full or the file ends — the zero-copy path of a block device reading straight
    /// into pinned guest memory.
    /// </summary>
    /// <param name="offset">The byte offset in the file.</param>
    /// <param name="destinations">Where to read to; memory the caller keeps mapped for the call.</param>
    /// <returns>The bytes read: less than the buffers' total only at the end of the file.</returns>
    public long ReadAt(long offset, ReadOnlySpan<HostBuffer> destinations) => TransferVectored(offset, destinations, write: false);

    /// <summary>Writes all of the buffers, in order, at <paramref name="offset"/> (<c>pwritev</c>, up to 1024 buffers a call).</summary>
    /// <param name="offset">The byte offset in the file.</param>
    /// <param name="sources">What to write; memory the caller keeps mapped for the call.</param>
    public void WriteAt(long offset, ReadOnlySpan<HostBuffer> sources) => TransferVectored(offset, sources, write: true);

    /// <summary>Makes every completed write durable (<c>fdatasync</c>): after it returns, the data is on the storage device.</summary>
    public void FlushToDisk()
    {
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            while (Interop.Libc.FDataSync(Descriptor) != 0)
            {
                if (Marshal.GetLastWin32Error() != Errno.EINTR)
                {
                    throw Error("fdatasync", Path);
                }
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    /// <summary>Deallocates a range, which then reads back as zeros (<c>fallocate</c> PUNCH_HOLE); the length does not change.</summary>
    /// <param name="offset">The first byte.</param>
    /// <param name="length">The byte count.</param>
    /// <returns><see langword="false"/> if the file system cannot punch holes (nothing changed).</returns>
    public bool TryPunchHole(long offset, long length) =>
        Allocate(Interop.Libc.FALLOC_FL_PUNCH_HOLE | Interop.Libc.FALLOC_FL_KEEP_SIZE, offset, length, "fallocate(PUNCH_HOLE)");

    /// <summary>Makes a range read back as zeros, keeping it allocated (<c>fallocate</c> ZERO_RANGE); the length does not change.</summary>
    /// <param name="offset">The first byte.</param>
    /// <param name="length">The byte count.</param>
    /// <returns><see langword="false"/> if the file system cannot zero ranges (nothing changed).</returns>
    public bool TryZeroRange(long offset, long length) =>
        Allocate(Interop.Libc.FALLOC_FL_ZERO_RANGE | Interop.Libc.FALLOC_FL_KEEP_SIZE, offset, length, "fallocate(ZERO_RANGE)");

    /// <summary>Closes the image.</summary>
    public void Dispose() => _handle.Dispose();

    private static IOException Error(string call, string path) => Error(call, path, Marshal.GetLastWin32Error());

    private static IOException Error(string call, string path, int errno) => new($"{call} on {path} failed: errno {errno}.", errno);

    private static void CheckOffset(long offset)
    {
        if (offset < 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(offset), "A file offset is not negative.");
        }
    }

    private bool Allocate(int mode, long offset, long length, string call)
    {
        CheckOffset(offset);
        if (length <= 0 || offset > long.MaxValue - length)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(length), "The range is empty or runs past the largest file offset.");
        }

        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            while (Interop.Libc.FAllocate(Descriptor, mode, offset, length) != 0)
            {
                int errno = Marshal.GetLastWin32Error();
                if (errno == Errno.EINTR)
                {
                    continue;
                }

                if (errno == Errno.EOPNOTSUPP || errno == Errno.ENODEV || errno == ENOSYS)
                {
                    return false;
                }

                throw Error(call, Path);
            }

            return true;
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// preadv or pwritev over the buffers; a call that moves part of a buffer (a signal, a pipe-like file) has the rest
    /// of that buffer finished by <see cref="Transfer"/>, then goes on with the next ones.
    /// </summary>
    private unsafe long TransferVectored(long offset, ReadOnlySpan<HostBuffer> buffers, bool write)
    {
        // The kernel's UIO_MAXIOV: more buffers a call are refused with EINVAL.
        const int MaxBuffersPerCall = 1024;
        CheckOffset(offset);
        long done = 0;
        int next = 0;
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            fixed (HostBuffer* first = buffers)
            {
                while (next < buffers.Length)
                {
                    int count = Math.Min(buffers.Length - next, MaxBuffersPerCall);
                    long n = write
                        ? Interop.Libc.PWriteV(Descriptor, first + next, count, offset + done)
                        : Interop.Libc.PReadV(Descriptor, first + next, count, offset + done);
                    if (n < 0)
                    {
                        if (Marshal.GetLastWin32Error() == Errno.EINTR)
                        {
                            continue;
                        }

                        throw Error(write ? "pwritev" : "preadv", Path);
                    }

                    if (n == 0)
                    {
                        if (write && buffers[next].Length != 0)
                        {
                            throw new IOException($"pwritev on {Path} wrote nothing at offset {offset + done}.");
                        }

                        if (!write)
                        {
                            break;
                        }
                    }

                    done += n;
                    while (next < buffers.Length && n >= buffers[next].Length)
                    {
                        n -= buffers[next].Length;
                        next++;
                    }

                    if (n > 0)
                    {
                        // Part of one buffer moved: finish it on its own (a read stops there at the end of the file).
                        HostBuffer partial = buffers[next++];
                        int rest = partial.Length - (int)n;
                        int moved = Transfer(offset + done, (byte*)partial.Address + n, rest, write);
                        done += moved;
                        if (moved < rest)
                        {
                            break;
                        }
                    }
                }
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }

        return done;
    }

    /// <summary>
    /// pread or pwrite until <paramref name="length"/> bytes moved, retrying an interrupted call; a read stops at the
    /// end of the file, a write that moves nothing fails. The descriptor is held (AddRef) for the calls, so a
    /// concurrent <see cref="Dispose"/> cannot close it under them.
    /// </summary>
    private unsafe int Transfer(long offset, byte* start, int length, bool write)
    {
        CheckOffset(offset);
        int done = 0;
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            while (done < length)
            {
                long n = write
                    ? Interop.Libc.PWrite(Descriptor, start + done, (nuint)(length - done), offset + done)
                    : Interop.Libc.PRead(Descriptor, start + done, (nuint)(length - done), offset + done);
                if (n < 0)
                {
                    if (Marshal.GetLastWin32Error() == Errno.EINTR)
                    {
                        continue;
                    }

                    throw Error(write ? "pwrite" : "pread", Path);
                }

                if (n == 0)
                {
                    if (write)
                    {
                        throw new IOException($"pwrite on {Path} wrote nothing at offset {offset + done}.");
                    }

                    break;
                }

                done += (int)n;
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }

        return done;
    }
}
