using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_open</c>: Opens a connection to xenstored (its Unix socket, or /dev/xen/xenbus); returns null with errno set on failure.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_open", SetLastError = true)]
        internal static extern nint Open(nuint flags);
    }
}
