using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_open</c>: Opens a device-model handle (privcmd); returns null with errno set on failure.</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_open", SetLastError = true)]
        internal static extern nint Open(nint logger, uint openFlags);
    }
}
