using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_set_isa_irq_level</c>: Sets an ISA IRQ line's level (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_set_isa_irq_level", SetLastError = true)]
        internal static extern int SetIsaIrqLevel(nint dmod, ushort domid, byte irq, uint level);
    }
}
