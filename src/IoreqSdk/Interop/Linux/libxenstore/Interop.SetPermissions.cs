using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_set_permissions</c>: Replaces a node's permissions (the first entry names the owner and everyone else's access); false with errno.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_set_permissions", SetLastError = true)]
        internal static extern unsafe byte SetPermissions(nint xsh, uint transaction, byte* path, XsPermissions* permissions, uint count);
    }
}
