using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>O_RDONLY</c> (fcntl.h).</summary>
        internal const int O_RDONLY = 0;

        /// <summary><c>O_RDWR</c>.</summary>
        internal const int O_RDWR = 2;

        /// <summary><c>O_NONBLOCK</c>: the same value on x86-64 and Arm64 Linux (asm-generic).</summary>
        internal const int O_NONBLOCK = 0x800;

        /// <summary><c>O_CLOEXEC</c>: the same value on x86-64 and Arm64 Linux.</summary>
        internal const int O_CLOEXEC = 0x80000;

        /// <summary><c>open</c> without <c>O_CREAT</c> (so no mode argument); <paramref name="path"/> is NUL-terminated UTF-8.</summary>
        [DllImport(Libraries.Libc, EntryPoint = "open", SetLastError = true)]
        internal static extern unsafe int Open(byte* path, int flags);
    }
}
