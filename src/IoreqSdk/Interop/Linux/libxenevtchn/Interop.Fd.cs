using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenEventChannel
    {
        /// <summary><c>xenevtchn_fd</c>: The handle's file descriptor, readable when a port is pending.</summary>
        [DllImport(Libraries.XenEventChannel, EntryPoint = "xenevtchn_fd", SetLastError = true)]
        internal static extern int Fd(nint xce);
    }
}
