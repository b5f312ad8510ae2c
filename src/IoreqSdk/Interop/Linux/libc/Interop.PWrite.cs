using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>pwrite</c> (unistd.h): writes at an offset without moving the file position.</summary>
        [DllImport(Libraries.Libc, EntryPoint = "pwrite", SetLastError = true)]
        internal static extern unsafe long PWrite(int fd, void* buffer, nuint count, long offset);
    }
}
