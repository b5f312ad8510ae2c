using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_modified_memory</c>: Marks frames the device model wrote, for log-dirty tracking (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_modified_memory", SetLastError = true)]
        internal static extern int ModifiedMemory(nint dmod, ushort domid, ulong firstPfn, uint count);
    }
}
