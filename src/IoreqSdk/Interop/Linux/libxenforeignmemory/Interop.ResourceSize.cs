using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenForeignMemory
    {
        /// <summary><c>xenforeignmemory_resource_size</c>: Reads a resource's size in bytes.</summary>
        [DllImport(Libraries.XenForeignMemory, EntryPoint = "xenforeignmemory_resource_size", SetLastError = true)]
        internal static extern unsafe int ResourceSize(nint fmem, ushort domid, uint type, uint id, nuint* size);
    }
}
