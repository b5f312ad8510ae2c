using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_watch</c>: Registers a watch on a path and its descendants; it fires once at once, then on every change.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_watch", SetLastError = true)]
        internal static extern unsafe byte Watch(nint xsh, byte* path, byte* token);
    }
}
