using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenEventChannel
    {
        /// <summary><c>xenevtchn_unbind</c>: Unbinds a local port.</summary>
        [DllImport(Libraries.XenEventChannel, EntryPoint = "xenevtchn_unbind", SetLastError = true)]
        internal static extern int Unbind(nint xce, uint port);
    }
}
