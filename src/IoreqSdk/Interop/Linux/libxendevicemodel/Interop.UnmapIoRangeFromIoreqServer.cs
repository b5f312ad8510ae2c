using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_unmap_io_range_from_ioreq_server</c>: Releases a range claimed with map_io_range_to_ioreq_server.</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_unmap_io_range_from_ioreq_server", SetLastError = true)]
        internal static extern int UnmapIoRangeFromIoreqServer(nint dmod, ushort domid, ushort id, int isMmio, ulong start, ulong end);
    }
}
