using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class XenDeviceModel
    {
        /// <summary><c>xendevicemodel_inject_event</c>: Injects an event (interrupt, exception) into a vCPU (x86).</summary>
        [DllImport(Libraries.XenDeviceModel, EntryPoint = "xendevicemodel_inject_event", SetLastError = true)]
        internal static extern int InjectEvent(nint dmod, ushort domid, int vcpu, byte vector, byte type, uint errorCode, byte instructionLength, ulong extra);
    }
}
