using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenForeignMemory
    {
        /// <summary><c>xenforeignmemory_map_resource</c>: Maps frames of a guest resource (XENMEM_resource_*, e.g. an ioreq server's pages); returns the resource handle.</summary>
        [DllImport(Libraries.XenForeignMemory, EntryPoint = "xenforeignmemory_map_resource", SetLastError = true)]
        internal static extern unsafe nint MapResource(nint fmem, ushort domid, uint type, uint id, nuint frame, nuint frameCount, void** address, int prot, int flags);
    }
}
