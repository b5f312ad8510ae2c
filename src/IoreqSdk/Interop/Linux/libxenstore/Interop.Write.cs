using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_write</c>: Writes a node, creating it and any missing parents; false with errno on failure.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_write", SetLastError = true)]
        internal static extern unsafe byte Write(nint xsh, uint transaction, byte* path, void* data, uint length);
    }
}
