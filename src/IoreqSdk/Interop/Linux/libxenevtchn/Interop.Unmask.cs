using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenEventChannel
    {
        /// <summary><c>xenevtchn_unmask</c>: Unmasks a port taken with pending.</summary>
        [DllImport(Libraries.XenEventChannel, EntryPoint = "xenevtchn_unmask", SetLastError = true)]
        internal static extern int Unmask(nint xce, uint port);
    }
}
