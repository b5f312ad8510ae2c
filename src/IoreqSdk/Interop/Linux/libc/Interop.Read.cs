using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>read</c> (returns <c>ssize_t</c>: 64 bits on the 64-bit Linux the backend runs on).</summary>
        [DllImport(Libraries.Libc, EntryPoint = "read", SetLastError = true)]
        internal static extern unsafe long Read(int fd, void* buffer, nuint count);
    }
}
