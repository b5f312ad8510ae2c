using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_close</c>: Closes the connection: its watches go with it.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_close", SetLastError = true)]
        internal static extern void Close(nint xsh);
    }
}
