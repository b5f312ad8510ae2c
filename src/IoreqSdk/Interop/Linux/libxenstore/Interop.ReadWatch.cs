using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_read_watch</c>: Blocks for the next watch event: a malloc'd vector [path, token] (free it with libc free); null with errno.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_read_watch", SetLastError = true)]
        internal static extern unsafe byte** ReadWatch(nint xsh, uint* count);
    }
}
