using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenEventChannel
    {
        /// <summary><c>xenevtchn_pending</c>: Takes one pending port (left masked), or -1.</summary>
        [DllImport(Libraries.XenEventChannel, EntryPoint = "xenevtchn_pending", SetLastError = true)]
        internal static extern int Pending(nint xce);
    }
}
