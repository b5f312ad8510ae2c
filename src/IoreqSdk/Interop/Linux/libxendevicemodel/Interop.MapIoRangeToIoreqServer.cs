using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_map_io_range_to_ioreq_server</c>: Claims an inclusive port or memory range for a server.</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_map_io_range_to_ioreq_server", SetLastError = true)]
        internal static extern int MapIoRangeToIoreqServer(nint dmod, ushort domid, ushort id, int isMmio, ulong start, ulong end);
    }
}
