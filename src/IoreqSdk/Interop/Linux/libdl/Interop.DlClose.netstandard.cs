using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class LibDl
    {
        /// <summary><c>dlclose</c>, for netstandard2.0, which has no NativeLibrary.</summary>
        [DllImport(Libraries.LibDl, EntryPoint = "dlclose")]
        internal static extern int DlClose(nint handle);
    }
}
