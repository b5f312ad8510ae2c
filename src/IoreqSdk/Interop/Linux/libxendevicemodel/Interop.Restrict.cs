using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_restrict</c>: Irreversibly limits the handle to one guest.</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_restrict", SetLastError = true)]
        internal static extern int Restrict(nint dmod, ushort domid);
    }
}
