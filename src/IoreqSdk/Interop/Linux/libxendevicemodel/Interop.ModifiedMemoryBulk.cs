using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_modified_memory_bulk</c>: Marks several frame ranges (struct xen_dm_op_modified_memory_extent, 16 bytes each) as written (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_modified_memory_bulk", SetLastError = true)]
        internal static extern unsafe int ModifiedMemoryBulk(nint dmod, ushort domid, void* extents, uint count);
    }
}
