using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary><c>fdatasync</c> (unistd.h): the file's data (and the metadata needed to read it back) reaches the storage device.</summary>
        [DllImport(Libraries.Libc, EntryPoint = "fdatasync", SetLastError = true)]
        internal static extern int FDataSync(int fd);
    }
}
