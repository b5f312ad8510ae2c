using System;
using System.Runtime.InteropServices;

namespace IoreqSdk.Xen;

/// <summary>A handle of one of Xen's tool libraries: a pointer the library allocated, null when opening failed.</summary>
internal abstract class SafeXenHandle : SafeHandle
{
    protected SafeXenHandle()
        : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>Takes ownership of what the library's open call returned.</summary>
    internal static T Adopt<T>(nint native)
        where T : SafeXenHandle, new()
    {
        var result = new T();
        result.SetHandle(native);
        return result;
    }
}

/// <summary>A libxendevicemodel handle; closing it closes its privcmd descriptor.</summary>
internal sealed class SafeXenDeviceModelHandle : SafeXenHandle
{
    protected override bool ReleaseHandle() => Interop.XenDeviceModel.Close(handle) == 0;
}

/// <summary>
/// A libxenforeignmemory handle. Mappings made through it hold a reference on it (<see cref="SafeHandle.DangerousAddRef"/>),
/// so it is closed only after the last of them is unmapped: a parent handle outlives its mappings.
/// </summary>
internal sealed class SafeXenForeignMemoryHandle : SafeXenHandle
{
    protected override bool ReleaseHandle() => Interop.XenForeignMemory.Close(handle) == 0;
}

/// <summary>A libxenevtchn handle; closing it unbinds every port still bound through it.</summary>
internal sealed class SafeXenEventChannelHandle : SafeXenHandle
{
    protected override bool ReleaseHandle() => Interop.XenEventChannel.Close(handle) == 0;
}

/// <summary>
/// Holds a reference on a SafeHandle for the length of a native call, so a concurrent Dispose cannot close it
/// underneath (dotnet/runtime's pattern, without the marshaller: the P/Invokes stay blittable).
/// </summary>
internal readonly ref struct HandleLease
{
    private readonly SafeHandle _handle;

    public HandleLease(SafeHandle handle)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        _handle = handle;
        Value = handle.DangerousGetHandle();
    }

    public nint Value { get; }

    public void Dispose() => _handle.DangerousRelease();
}
