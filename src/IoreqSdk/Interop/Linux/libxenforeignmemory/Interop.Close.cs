using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenForeignMemory
    {
        /// <summary><c>xenforeignmemory_close</c>: Closes a foreign-memory handle.</summary>
        [DllImport(Libraries.XenForeignMemory, EntryPoint = "xenforeignmemory_close", SetLastError = true)]
        internal static extern int Close(nint fmem);
    }
}
