using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_set_irq_level</c>: Sets an SPI's level (Arm; Xen 4.17 injects on level 1 only).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_set_irq_level", SetLastError = true)]
        internal static extern int SetIrqLevel(nint dmod, ushort domid, uint irq, uint level);
    }
}
