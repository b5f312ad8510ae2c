using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_close</c>: Closes a device-model handle.</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_close", SetLastError = true)]
        internal static extern int Close(nint dmod);
    }
}
