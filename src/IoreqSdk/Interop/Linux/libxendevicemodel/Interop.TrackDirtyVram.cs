using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_track_dirty_vram</c>: Returns and clears the dirty bits of a frame range since the last call (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_track_dirty_vram", SetLastError = true)]
        internal static extern unsafe int TrackDirtyVram(nint dmod, ushort domid, ulong firstPfn, uint count, nuint* dirtyBitmap);
    }
}
