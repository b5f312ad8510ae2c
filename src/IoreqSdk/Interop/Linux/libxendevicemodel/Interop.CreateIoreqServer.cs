using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_create_ioreq_server</c>: Creates an ioreq server (disabled) with the buffered-ring mode given (HVM_IOREQSRV_BUFIOREQ_*).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_create_ioreq_server", SetLastError = true)]
        internal static extern unsafe int CreateIoreqServer(nint dmod, ushort domid, int handleBufioreq, ushort* id);
    }
}
