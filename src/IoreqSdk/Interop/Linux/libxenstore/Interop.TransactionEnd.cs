using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_transaction_end</c>: Commits (abort 0) or abandons (abort 1) a transaction; false with errno EAGAIN when a conflicting change won: retry.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_transaction_end", SetLastError = true)]
        internal static extern byte TransactionEnd(nint xsh, uint transaction, byte abort);
    }
}
