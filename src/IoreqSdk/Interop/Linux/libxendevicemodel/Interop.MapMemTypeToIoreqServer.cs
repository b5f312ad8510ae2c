using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_map_mem_type_to_ioreq_server</c>: Forwards writes to pages of the p2m type HVMMEM_ioreq_server to a server (x86 HAP only).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_map_mem_type_to_ioreq_server", SetLastError = true)]
        internal static extern int MapMemTypeToIoreqServer(nint dmod, ushort domid, ushort id, ushort type, uint flags);
    }
}
