using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_unwatch</c>: Removes a watch registered with the same path and token.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_unwatch", SetLastError = true)]
        internal static extern unsafe byte Unwatch(nint xsh, byte* path, byte* token);
    }
}
