using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_destroy_ioreq_server</c>: Destroys a server: its ranges, ports and pages go with it.</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_destroy_ioreq_server", SetLastError = true)]
        internal static extern int DestroyIoreqServer(nint dmod, ushort domid, ushort id);
    }
}
