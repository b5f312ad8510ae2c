using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenEventChannel
    {
        /// <summary><c>xenevtchn_bind_interdomain</c>: Binds a local port to a remote domain's port; returns the local port or -1.</summary>
        [DllImport(Libraries.XenEventChannel, EntryPoint = "xenevtchn_bind_interdomain", SetLastError = true)]
        internal static extern int BindInterdomain(nint xce, uint domid, uint remotePort);
    }
}
