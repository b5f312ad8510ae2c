using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenStore
    {
        /// <summary><c>xs_transaction_start</c>: Starts a transaction; returns its id, or XBT_NULL (0) with errno on failure.</summary>
        [DllImport(Libraries.XenStore, EntryPoint = "xs_transaction_start", SetLastError = true)]
        internal static extern uint TransactionStart(nint xsh);
    }
}
