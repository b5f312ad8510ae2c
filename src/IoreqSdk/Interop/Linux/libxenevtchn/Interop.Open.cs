using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenEventChannel
    {
        /// <summary><c>xenevtchn_open</c>: Opens an event-channel handle (/dev/xen/evtchn); returns null with errno set on failure.</summary>
        [DllImport(Libraries.XenEventChannel, EntryPoint = "xenevtchn_open", SetLastError = true)]
        internal static extern nint Open(nint logger, uint flags);
    }
}
