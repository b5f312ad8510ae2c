using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        public const int EFD_CLOEXEC = 0x80000;
        public const int EFD_NONBLOCK = 0x800;

        /// <summary><c>eventfd</c>: a counter descriptor, readable while non-zero.</summary>
        [DllImport(Libraries.Libc, EntryPoint = "eventfd", SetLastError = true)]
        internal static extern int EventFd(uint initialValue, int flags);
    }
}
