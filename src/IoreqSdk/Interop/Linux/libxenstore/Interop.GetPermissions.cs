using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_get_permissions</c>: A node's permissions, owner first, in one malloc'd array (free it with libc free); null with errno.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_get_permissions", SetLastError = true)]
        internal static extern unsafe XsPermissions* GetPermissions(nint xsh, uint transaction, byte* path, uint* count);
    }
}
