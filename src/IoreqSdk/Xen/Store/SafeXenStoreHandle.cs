namespace IoreqSdk.Xen.Store;

/// <summary>A libxenstore connection (<c>struct xs_handle *</c>); closing it drops its watches and open transactions.</summary>
internal sealed class SafeXenStoreHandle : SafeXenHandle
{
    protected override bool ReleaseHandle()
    {
        Interop.XenStore.Close(handle);
        return true;
    }
}
