using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenForeignMemory
    {
        /// <summary><c>xenforeignmemory_unmap</c>: Unmaps frames mapped with map or map2.</summary>
        [DllImport(Libraries.XenForeignMemory, EntryPoint = "xenforeignmemory_unmap", SetLastError = true)]
        internal static extern unsafe int Unmap(nint fmem, void* address, nuint pages);
    }
}
