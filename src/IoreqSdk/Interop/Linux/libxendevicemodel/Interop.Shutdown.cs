using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_shutdown</c>: Shuts the guest down with a SHUTDOWN_* reason (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_shutdown", SetLastError = true)]
        internal static extern int Shutdown(nint dmod, ushort domid, uint reason);
    }
}
