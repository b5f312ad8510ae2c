using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_inject_msi</c>: Injects an MSI (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_inject_msi", SetLastError = true)]
        internal static extern int InjectMsi(nint dmod, ushort domid, ulong msiAddress, uint msiData);
    }
}
