using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_directory</c>: Lists a node's children: one malloc'd block (array of pointers, then the strings) freed with one libc free; null with errno.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_directory", SetLastError = true)]
        internal static extern unsafe byte** Directory(nint xsh, uint transaction, byte* path, uint* count);
    }
}
