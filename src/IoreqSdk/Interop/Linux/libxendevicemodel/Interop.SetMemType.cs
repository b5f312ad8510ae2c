using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_set_mem_type</c>: Sets the p2m type (hvmmem_type_t) of a frame range (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_set_mem_type", SetLastError = true)]
        internal static extern int SetMemType(nint dmod, ushort domid, uint memType, ulong firstPfn, uint count);
    }
}
