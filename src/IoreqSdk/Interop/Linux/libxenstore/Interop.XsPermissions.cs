using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>XBT_NULL</c>: no transaction.</summary>
        public const uint XBT_NULL = 0;

        /// <summary><c>XS_PERM_NONE</c>.</summary>
        public const uint XS_PERM_NONE = 0x00;

        /// <summary><c>XS_PERM_READ</c>.</summary>
        public const uint XS_PERM_READ = 0x01;

        /// <summary><c>XS_PERM_WRITE</c>.</summary>
        public const uint XS_PERM_WRITE = 0x02;

        /// <summary><c>XS_WATCH_PATH</c>: the index of the changed path in a watch event's vector.</summary>
        public const int XS_WATCH_PATH = 0;

        /// <summary><c>XS_WATCH_TOKEN</c>: the index of the watch's token in a watch event's vector.</summary>
        public const int XS_WATCH_TOKEN = 1;

        /// <summary><c>struct xs_permissions</c> (xenstore_lib.h): two unsigned ints, 8 bytes; the layout test proves it against the header.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct XsPermissions
        {
            /// <summary><c>id</c>: the domain.</summary>
            public uint Id;

            /// <summary><c>perms</c>: XS_PERM_* bits.</summary>
            public uint Perms;
        }
    }
}
