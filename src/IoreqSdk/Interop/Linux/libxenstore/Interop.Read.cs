using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_read</c>: Reads a node's value into a malloc'd, NUL-terminated buffer (free it with libc free); null with errno (ENOENT: no such node).</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_read", SetLastError = true)]
        internal static extern unsafe nint Read(nint xsh, uint transaction, byte* path, uint* length);
    }
}
