using System.Collections.Generic;

namespace IoreqSdk.Xen;

/// <summary>
/// The restriction of one backend's handles to one guest (the privcmd RESTRICT ioctl behind
/// <c>xendevicemodel_restrict</c> and <c>xenforeignmemory_restrict</c>, the evtchn one behind
/// <c>xenevtchn_restrict</c>), and the event-channel handles it must reach: every handle opened through the backend
/// and not yet disposed is restricted with the others, and a handle opened after the restriction is restricted at
/// once, so no handle of the backend escapes it.
/// </summary>
internal sealed class XenHandleRestriction
{
    private readonly SafeXenDeviceModelHandle _deviceModel;
    private readonly SafeXenForeignMemoryHandle _foreignMemory;
    private readonly List<XenEventChannel> _channels = new();
    private readonly object _gate = new();
    private ushort? _restrictedTo;

    public XenHandleRestriction(SafeXenDeviceModelHandle deviceModel, SafeXenForeignMemoryHandle foreignMemory)
    {
        _deviceModel = deviceModel;
        _foreignMemory = foreignMemory;
    }

    /// <summary>The domain the handles are limited to, or <see langword="null"/>.</summary>
    public ushort? RestrictedTo
    {
        get
        {
            lock (_gate)
            {
                return _restrictedTo;
            }
        }
    }

    /// <summary>Opens an event-channel handle, restricted already if the backend is.</summary>
    public XenEventChannel OpenChannel()
    {
        XenEventChannel channel = XenEventChannel.Open();
        lock (_gate)
        {
            try
            {
                if (_restrictedTo is ushort domain)
                {
                    channel.Restrict(domain);
                }
            }
            catch
            {
                channel.Dispose();
                throw;
            }

            _channels.RemoveAll(c => c.IsDisposed);
            _channels.Add(channel);
        }

        return channel;
    }

    /// <summary>Restricts every handle to <paramref name="domain"/>; once more for the same domain changes nothing.</summary>
    public void Restrict(ushort domain)
    {
        lock (_gate)
        {
            if (_restrictedTo == domain)
            {
                return;
            }

            // Each library's handle has its own privcmd (or evtchn) descriptor, restricted by its own ioctl. A failure
            // part-way leaves some handles restricted (it cannot be undone); the exception says which call failed.
            using (var lease = new HandleLease(_deviceModel))
            {
                XenErrors.ThrowIfFailed(Interop.XenDeviceModel.Restrict(lease.Value, domain), "xendevicemodel_restrict", domain);
            }

            using (var lease = new HandleLease(_foreignMemory))
            {
                XenErrors.ThrowIfFailed(Interop.XenForeignMemory.Restrict(lease.Value, domain), "xenforeignmemory_restrict", domain);
            }

            _channels.RemoveAll(c => c.IsDisposed);
            foreach (XenEventChannel channel in _channels)
            {
                channel.Restrict(domain);
            }

            _restrictedTo = domain;
        }
    }
}
