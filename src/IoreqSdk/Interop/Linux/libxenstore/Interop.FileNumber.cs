using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_fileno</c>: A descriptor readable while watch events are queued (for poll).</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_fileno", SetLastError = true)]
        internal static extern int FileNumber(nint xsh);
    }
}
