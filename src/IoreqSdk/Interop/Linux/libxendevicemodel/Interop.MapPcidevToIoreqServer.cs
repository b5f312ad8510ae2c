using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_map_pcidev_to_ioreq_server</c>: Claims a PCI function's configuration space for a server (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_map_pcidev_to_ioreq_server", SetLastError = true)]
        internal static extern int MapPcidevToIoreqServer(nint dmod, ushort domid, ushort id, ushort segment, byte bus, byte device, byte function);
    }
}
