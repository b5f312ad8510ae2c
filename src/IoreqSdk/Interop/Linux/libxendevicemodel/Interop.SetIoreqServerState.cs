using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_set_ioreq_server_state</c>: Enables or disables a server.</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_set_ioreq_server_state", SetLastError = true)]
        internal static extern int SetIoreqServerState(nint dmod, ushort domid, ushort id, int enabled);
    }
}
