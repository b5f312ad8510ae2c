using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenEventChannel
    {
        /// <summary><c>xenevtchn_close</c>: Closes an event-channel handle and unbinds its ports.</summary>
        [DllImport(Libraries.XenEventChannel, EntryPoint = "xenevtchn_close", SetLastError = true)]
        internal static extern int Close(nint xce);
    }
}
