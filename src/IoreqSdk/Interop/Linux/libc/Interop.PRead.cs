using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>pread</c> (unistd.h): reads at an offset without moving the file position, so that several threads may share one descriptor; <c>ssize_t</c> and <c>off_t</c> are 64 bits on the 64-bit Linux the SDK runs on.</summary>
        [DllImport(Libraries.Libc, EntryPoint = "pread", SetLastError = true)]
        internal static extern unsafe long PRead(int fd, void* buffer, nuint count, long offset);
    }
}
