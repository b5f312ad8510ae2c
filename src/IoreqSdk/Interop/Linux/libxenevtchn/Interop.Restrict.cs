using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenEventChannel
    {
        /// <summary><c>xenevtchn_restrict</c>: Irreversibly limits the handle to one guest.</summary>
        [DllImport(Libraries.XenEventChannel, EntryPoint = "xenevtchn_restrict", SetLastError = true)]
        internal static extern int Restrict(nint xce, ushort domid);
    }
}
