using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenForeignMemory
    {
        /// <summary><c>xenforeignmemory_restrict</c>: Irreversibly limits the handle to one guest.</summary>
        [DllImport(Libraries.XenForeignMemory, EntryPoint = "xenforeignmemory_restrict", SetLastError = true)]
        internal static extern int Restrict(nint fmem, ushort domid);
    }
}
