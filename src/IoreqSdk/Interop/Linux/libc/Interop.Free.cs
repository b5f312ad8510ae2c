using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>free</c>: releases what libxenstore malloc'd for a result (its documented contract for xs_read, xs_directory and the rest).</summary>
        [DllImport(Libraries.Libc, EntryPoint = "free", SetLastError = true)]
        internal static extern unsafe void Free(void* pointer);
    }
}
