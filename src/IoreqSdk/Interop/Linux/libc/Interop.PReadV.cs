using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>preadv</c> (sys/uio.h): reads at an offset into several buffers in one call; <c>struct iovec</c> is
        /// <see cref="IoreqSdk.Memory.HostBuffer"/>'s layout (pointer, <c>size_t</c>), <c>off_t</c> is 64 bits.</summary>
        [DllImport(Libraries.Libc, EntryPoint = "preadv", SetLastError = true)]
        internal static extern unsafe long PReadV(int fd, IoreqSdk.Memory.HostBuffer* iov, int iovcnt, long offset);
    }
}
