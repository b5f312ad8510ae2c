using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class LibDl
    {
        public const int RTLD_NOW = 2;

        /// <summary><c>dlopen</c>, for netstandard2.0, which has no NativeLibrary.</summary>
        [DllImport(Libraries.LibDl, EntryPoint = "dlopen")]
        internal static extern unsafe nint DlOpen(byte* file, int mode);
    }
}
