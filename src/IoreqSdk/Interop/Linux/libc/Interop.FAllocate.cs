using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>FALLOC_FL_KEEP_SIZE</c> (linux/falloc.h): the file's size does not change.</summary>
        internal const int FALLOC_FL_KEEP_SIZE = 0x01;

        /// <summary><c>FALLOC_FL_PUNCH_HOLE</c>: deallocates the range (reads back zeros); with KEEP_SIZE only.</summary>
        internal const int FALLOC_FL_PUNCH_HOLE = 0x02;

        /// <summary><c>FALLOC_FL_ZERO_RANGE</c>: the range reads back zeros, allocated.</summary>
        internal const int FALLOC_FL_ZERO_RANGE = 0x10;

        /// <summary><c>fallocate</c> (fcntl.h, a Linux call): allocates, deallocates or zeroes a byte range of a file.</summary>
        [DllImport(Libraries.Libc, EntryPoint = "fallocate", SetLastError = true)]
        internal static extern int FAllocate(int fd, int mode, long offset, long length);
    }
}
