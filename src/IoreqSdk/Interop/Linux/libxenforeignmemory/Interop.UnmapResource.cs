using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenForeignMemory
    {
        /// <summary><c>xenforeignmemory_unmap_resource</c>: Unmaps a resource mapping and frees its handle.</summary>
        [DllImport(Libraries.XenForeignMemory, EntryPoint = "xenforeignmemory_unmap_resource", SetLastError = true)]
        internal static extern int UnmapResource(nint fmem, nint resource);
    }
}
