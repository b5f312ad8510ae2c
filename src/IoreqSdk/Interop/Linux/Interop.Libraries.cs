internal static partial class Interop
{
    /// <summary>
    /// The native libraries, by SONAME: the ABI-stable names the Debian runtime packages install (libxendevicemodel1, libxenstore4,
    /// libxenevtchn1, libxenforeignmemory1, libc6), so the development symlinks of libxen-dev are never needed.
    /// </summary>
    internal static class Libraries
    {
        public const string XenDeviceModel = "libxendevicemodel.so.1";
        public const string XenForeignMemory = "libxenforeignmemory.so.1";
        public const string XenEventChannel = "libxenevtchn.so.1";
        public const string XenStore = "libxenstore.so.4";
        public const string Libc = "libc.so.6";

        // glibc's dlopen lives in libc since 2.34; libdl.so.2 carries it (as a stub there) on every glibc.
        public const string LibDl = "libdl.so.2";
    }
}
