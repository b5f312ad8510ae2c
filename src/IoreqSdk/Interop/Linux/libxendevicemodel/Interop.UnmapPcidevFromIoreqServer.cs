using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_unmap_pcidev_from_ioreq_server</c>: Releases a PCI function claimed with map_pcidev_to_ioreq_server.</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_unmap_pcidev_from_ioreq_server", SetLastError = true)]
        internal static extern int UnmapPcidevFromIoreqServer(nint dmod, ushort domid, ushort id, ushort segment, byte bus, byte device, byte function);
    }
}
