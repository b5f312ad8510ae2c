using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_set_pci_intx_level</c>: Sets a PCI INTx line's level (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_set_pci_intx_level", SetLastError = true)]
        internal static extern int SetPciIntxLevel(nint dmod, ushort domid, ushort segment, byte bus, byte device, byte intx, uint level);
    }
}
