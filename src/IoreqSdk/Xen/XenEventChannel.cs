using System;
using System.Runtime.InteropServices;
using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Xen;

/// <summary>
/// Event channels through libxenevtchn. The loop thread blocks in <c>poll</c> on two descriptors: the handle's,
/// readable when a bound port fired, and an eventfd that <see cref="Interrupt"/> writes to stop it.
/// </summary>
/// <remarks>
/// Both descriptors are used only under a reference on the handle that owns them (the eventfd's own SafeHandle, the
/// xenevtchn handle for its descriptor), so a call racing <see cref="Dispose"/> either completes on the live
/// descriptor or does nothing: it never writes to (or polls) a number the process has since reused for another file.
/// </remarks>
internal sealed class XenEventChannel : IEventChannel
{
    private readonly SafeXenEventChannelHandle _handle;
    private readonly int _eventFd;
    private readonly SafeEventFdHandle _wake;
    private bool _disposed;

    private XenEventChannel(SafeXenEventChannelHandle handle, int eventFd, SafeEventFdHandle wake)
    {
        _handle = handle;
        _eventFd = eventFd;
        _wake = wake;
    }

    /// <summary>The wake eventfd's number while it is open (for tests).</summary>
    internal int WakeDescriptor => (int)_wake.DangerousGetHandle();

    /// <summary>A channel over an arbitrary descriptor and no library handle: how tests reach the wake logic without Xen.</summary>
    internal static XenEventChannel ForDescriptor(int eventFd) => new(new SafeXenEventChannelHandle(), eventFd, SafeEventFdHandle.Create());

    public static XenEventChannel Open()
    {
        nint native = Interop.XenEventChannel.Open(0, 0);
        if (native == 0)
        {
            throw XenErrors.LastError("xenevtchn_open");
        }

        var handle = SafeXenHandle.Adopt<SafeXenEventChannelHandle>(native);

        // The library's descriptor first: when that fails there is no eventfd yet to leak.
        int eventFd = Interop.XenEventChannel.Fd(native);
        if (eventFd < 0)
        {
            HypervisorException error = XenErrors.LastError("xenevtchn_fd");
            handle.Dispose();
            throw error;
        }

        SafeEventFdHandle wake = SafeEventFdHandle.Create();
        if (wake.IsInvalid)
        {
            HypervisorException error = XenErrors.LastError("eventfd");
            wake.Dispose();
            handle.Dispose();
            throw error;
        }

        return new XenEventChannel(handle, eventFd, wake);
    }

    /// <summary>Whether <see cref="Dispose"/> ran (the hypervisor forgets disposed channels when it restricts).</summary>
    internal bool IsDisposed => Volatile.Read(ref _disposed);

    /// <summary>Limits the handle to one domain (<c>xenevtchn_restrict</c>); <see cref="XenHypervisor.Restrict"/> calls it.</summary>
    internal void Restrict(ushort domain)
    {
        using var lease = new HandleLease(_handle);
        if (Interop.XenEventChannel.Restrict(lease.Value, domain) != 0)
        {
            throw XenErrors.LastError("xenevtchn_restrict", domain);
        }
    }

    public uint BindInterdomain(ushort domain, uint remotePort)
    {
        using var lease = new HandleLease(_handle);
        int port = Interop.XenEventChannel.BindInterdomain(lease.Value, domain, remotePort);
        return port >= 0 ? (uint)port : throw XenErrors.LastError("xenevtchn_bind_interdomain", domain);
    }

    public void Unbind(uint localPort)
    {
        using var lease = new HandleLease(_handle);
        if (Interop.XenEventChannel.Unbind(lease.Value, localPort) != 0)
        {
            throw XenErrors.LastError("xenevtchn_unbind");
        }
    }

    public void Notify(uint localPort)
    {
        using var lease = new HandleLease(_handle);
        if (Interop.XenEventChannel.Notify(lease.Value, localPort) != 0)
        {
            throw XenErrors.LastError("xenevtchn_notify");
        }
    }

    public void Unmask(uint localPort)
    {
        using var lease = new HandleLease(_handle);
        if (Interop.XenEventChannel.Unmask(lease.Value, localPort) != 0)
        {
            throw XenErrors.LastError("xenevtchn_unmask");
        }
    }

    public unsafe bool WaitPending(out uint localPort)
    {
        // Held for the whole wait: neither descriptor can be closed (and its number reused) while poll watches it.
        using var events = new HandleLease(_handle);
        using var wake = new HandleLease(_wake);
        int wakeFd = (int)wake.Value;
        Interop.Libc.PollFd* fds = stackalloc Interop.Libc.PollFd[2];
        while (true)
        {
            fds[0] = new Interop.Libc.PollFd { Fd = _eventFd, Events = Interop.Libc.POLLIN };
            fds[1] = new Interop.Libc.PollFd { Fd = wakeFd, Events = Interop.Libc.POLLIN };
            int ready = Interop.Libc.Poll(fds, 2, -1);
            if (ready < 0)
            {
                if (Marshal.GetLastWin32Error() == Errno.EINTR)
                {
                    continue;
                }

                throw XenErrors.LastError("poll");
            }

            if (fds[1].Revents != 0)
            {
                // One wake per Interrupt, as the loop expects: consume the counter (a stop cannot be lost this way, since
                // the loop checks its stop flag after every false return, and a wake that arrives between that check and
                // the next poll leaves the counter non-zero). A port that fired meanwhile stays readable for the next wait.
                ulong count;
                _ = Interop.Libc.Read(wakeFd, &count, sizeof(ulong));
                localPort = 0;
                return false;
            }

            // libxenevtchn documents its non-blocking mode as unreliable: always poll first, then take the port.
            if (fds[0].Revents != 0 && TakePending(out localPort))
            {
                return true;
            }
        }
    }

    private bool TakePending(out uint localPort)
    {
        using var lease = new HandleLease(_handle);
        int port = Interop.XenEventChannel.Pending(lease.Value);
        localPort = port >= 0 ? (uint)port : 0;
        return port >= 0;
    }

    /// <summary>Wakes the waiting thread, from any thread; after (or racing) <see cref="Dispose"/> it does nothing.</summary>
    public unsafe void Interrupt()
    {
        if (_wake.IsClosed)
        {
            return;
        }

        bool added = false;
        try
        {
            _wake.DangerousAddRef(ref added);
            ulong one = 1;
            _ = Interop.Libc.Write((int)_wake.DangerousGetHandle(), &one, sizeof(ulong));
        }
        catch (ObjectDisposedException)
        {
            // Disposed between the check and the reference: nothing to wake any more.
        }
        finally
        {
            if (added)
            {
                _wake.DangerousRelease();
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _handle.Dispose();

        // Closed once the last call holding a reference (an Interrupt from another thread, say) has returned.
        _wake.Dispose();
    }
}

/// <summary>An eventfd; closed when the last reference to it is released.</summary>
internal sealed class SafeEventFdHandle : SafeHandle
{
    public SafeEventFdHandle()
        : base(new IntPtr(-1), ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle.ToInt64() < 0;

    /// <summary>A new non-blocking, close-on-exec eventfd (invalid if the call failed; errno tells why).</summary>
    public static SafeEventFdHandle Create()
    {
        var result = new SafeEventFdHandle();
        result.SetHandle(new IntPtr(Interop.Libc.EventFd(0, Interop.Libc.EFD_CLOEXEC | Interop.Libc.EFD_NONBLOCK)));
        return result;
    }

    protected override bool ReleaseHandle() => Interop.Libc.Close((int)handle) == 0;
}
