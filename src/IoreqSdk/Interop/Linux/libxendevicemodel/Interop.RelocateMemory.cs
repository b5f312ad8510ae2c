using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_relocate_memory</c>: Moves a range of guest frames (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_relocate_memory", SetLastError = true)]
        internal static extern int RelocateMemory(nint dmod, ushort domid, uint size, ulong sourceGfn, ulong destinationGfn);
    }
}
