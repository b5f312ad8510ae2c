using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenForeignMemory
    {
        /// <summary><c>xenforeignmemory_map</c>: Maps guest frames contiguously; with an error array, reports per-frame failures.</summary>
        [DllImport(Libraries.XenForeignMemory, EntryPoint = "xenforeignmemory_map", SetLastError = true)]
        internal static extern unsafe void* Map(nint fmem, uint domid, int prot, nuint pages, ulong* frames, int* errors);
    }
}
