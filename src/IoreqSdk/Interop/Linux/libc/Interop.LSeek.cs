using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>SEEK_END</c>: the offset is relative to the end of the file.</summary>
        internal const int SEEK_END = 2;

        /// <summary><c>lseek</c> (unistd.h); used once per open file, for its length (<c>off_t</c> is 64 bits).</summary>
        [DllImport(Libraries.Libc, EntryPoint = "lseek", SetLastError = true)]
        internal static extern long LSeek(int fd, long offset, int whence);
    }
}
