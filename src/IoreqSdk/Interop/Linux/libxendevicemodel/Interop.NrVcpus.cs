using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_nr_vcpus</c>: Reads the guest's maximum vCPU count: the number of ioreq slots.</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_nr_vcpus", SetLastError = true)]
        internal static extern unsafe int NrVcpus(nint dmod, ushort domid, uint* vcpus);
    }
}
