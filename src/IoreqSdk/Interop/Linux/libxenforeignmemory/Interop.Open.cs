using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenForeignMemory
    {
        /// <summary><c>xenforeignmemory_open</c>: Opens a foreign-memory handle (privcmd); returns null with errno set on failure.</summary>
        [DllImport(Libraries.XenForeignMemory, EntryPoint = "xenforeignmemory_open", SetLastError = true)]
        internal static extern nint Open(nint logger, uint openFlags);
    }
}
