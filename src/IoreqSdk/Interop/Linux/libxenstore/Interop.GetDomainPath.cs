using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_get_domain_path</c>: A domain's home path (/local/domain/&lt;id&gt;) in a malloc'd string (free it with libc free); null with errno.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_get_domain_path", SetLastError = true)]
        internal static extern unsafe byte* GetDomainPath(nint xsh, uint domid);
    }
}
