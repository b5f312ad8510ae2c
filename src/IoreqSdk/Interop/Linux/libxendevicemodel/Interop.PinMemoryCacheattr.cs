using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_pin_memory_cacheattr</c>: Pins the cache attribute of a frame range (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_pin_memory_cacheattr", SetLastError = true)]
        internal static extern int PinMemoryCacheattr(nint dmod, ushort domid, ulong start, ulong end, uint type);
    }
}
