using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>write</c> (returns <c>ssize_t</c>: 64 bits on the 64-bit Linux the backend runs on).</summary>
        [DllImport(Libraries.Libc, EntryPoint = "write", SetLastError = true)]
        internal static extern unsafe long Write(int fd, void* buffer, nuint count);
    }
}
