using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>close</c>.</summary>
        [DllImport(Libraries.Libc, EntryPoint = "close", SetLastError = true)]
        internal static extern int Close(int fd);
    }
}
