using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        public const short POLLIN = 0x001;

        /// <summary><c>struct pollfd</c>: 8 bytes on Linux.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct PollFd
        {
            public int Fd;
            public short Events;
            public short Revents;
        }

        /// <summary><c>poll</c>: waits until one of the descriptors is ready.</summary>
        [DllImport(Libraries.Libc, EntryPoint = "poll", SetLastError = true)]
        internal static extern unsafe int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);
    }
}
