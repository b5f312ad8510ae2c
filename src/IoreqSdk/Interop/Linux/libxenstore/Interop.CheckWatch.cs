using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_check_watch</c>: The next queued watch event without blocking; null with errno EAGAIN when none is queued.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_check_watch", SetLastError = true)]
        internal static extern unsafe byte** CheckWatch(nint xsh);
    }
}
