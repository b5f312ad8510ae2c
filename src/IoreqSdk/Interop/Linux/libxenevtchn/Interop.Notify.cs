using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenEventChannel
    {
        /// <summary><c>xenevtchn_notify</c>: Signals the remote end of a bound port.</summary>
        [DllImport(Libraries.XenEventChannel, EntryPoint = "xenevtchn_notify", SetLastError = true)]
        internal static extern int Notify(nint xce, uint port);
    }
}
