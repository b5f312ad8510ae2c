using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_rm</c>: Removes a node and everything under it; false with errno on failure.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_rm", SetLastError = true)]
        internal static extern unsafe byte Remove(nint xsh, uint transaction, byte* path);
    }
}
