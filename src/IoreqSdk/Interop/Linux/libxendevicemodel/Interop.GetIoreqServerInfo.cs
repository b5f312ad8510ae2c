using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_get_ioreq_server_info</c>: Reads a server's legacy frame numbers and buffered port; null frame pointers ask for the port only (XEN_DMOP_no_gfns).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_get_ioreq_server_info", SetLastError = true)]
        internal static extern unsafe int GetIoreqServerInfo(nint dmod, ushort domid, ushort id, ulong* ioreqGfn, ulong* bufioreqGfn, uint* bufioreqPort);
    }
}
