using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_set_pci_link_route</c>: Routes a PCI interrupt link to an ISA IRQ (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_set_pci_link_route", SetLastError = true)]
        internal static extern int SetPciLinkRoute(nint dmod, ushort domid, byte link, byte irq);
    }
}
