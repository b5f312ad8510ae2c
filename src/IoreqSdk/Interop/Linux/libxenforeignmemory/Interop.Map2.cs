using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenForeignMemory
    {
        /// <summary><c>xenforeignmemory_map2</c>: Maps guest frames with a placement hint and mmap flags.</summary>
        [DllImport(Libraries.XenForeignMemory, EntryPoint = "xenforeignmemory_map2", SetLastError = true)]
        internal static extern unsafe void* Map2(nint fmem, uint domid, void* address, int prot, int flags, nuint pages, ulong* frames, int* errors);
    }
}
