using System;
using System.Runtime.InteropServices;
using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Xen;

/// <summary>
/// Event channels through libxenevtchn. The loop thread blocks in <c>poll</c> on two descriptors: the handle's,
/// readable when a bound port fired, and an eventfd that <see cref="Interrupt"/> writes to stop it.
/// </summary>
internal sealed class XenEventChannel : IEventChannel
{
    private readonly SafeXenEventChannelHandle _handle;
    private readonly int _eventFd;
    private readonly int _wakeFd;
    private bool _disposed;

    private XenEventChannel(SafeXenEventChannelHandle handle, int eventFd, int wakeFd)
    {
        _handle = handle;
        _eventFd = eventFd;
        _wakeFd = wakeFd;
    }

    /// <summary>A channel over an arbitrary descriptor and no library handle: how tests reach the wake logic without Xen.</summary>
    internal static XenEventChannel ForDescriptor(int eventFd) =>
        new(new SafeXenEventChannelHandle(), eventFd, Interop.Libc.EventFd(0, Interop.Libc.EFD_CLOEXEC | Interop.Libc.EFD_NONBLOCK));

    public static XenEventChannel Open()
    {
        nint native = Interop.XenEventChannel.Open(0, 0);
        if (native == 0)
        {
            throw XenErrors.LastError("xenevtchn_open");
        }

        var handle = SafeXenHandle.Adopt<SafeXenEventChannelHandle>(native);
        int eventFd = Interop.XenEventChannel.Fd(native);
        int wakeFd = Interop.Libc.EventFd(0, Interop.Libc.EFD_CLOEXEC | Interop.Libc.EFD_NONBLOCK);
        if (eventFd < 0 || wakeFd < 0)
        {
            HypervisorException error = XenErrors.LastError(eventFd < 0 ? "xenevtchn_fd" : "eventfd");
            handle.Dispose();
            throw error;
        }

        return new XenEventChannel(handle, eventFd, wakeFd);
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
        Interop.Libc.PollFd* fds = stackalloc Interop.Libc.PollFd[2];
        while (true)
        {
            fds[0] = new Interop.Libc.PollFd { Fd = _eventFd, Events = Interop.Libc.POLLIN };
            fds[1] = new Interop.Libc.PollFd { Fd = _wakeFd, Events = Interop.Libc.POLLIN };
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
                _ = Interop.Libc.Read(_wakeFd, &count, sizeof(ulong));
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

    public unsafe bool TryGetPending(out uint localPort)
    {
        // xenevtchn_pending reads the descriptor, which blocks when nothing fired: look first.
        var fd = new Interop.Libc.PollFd { Fd = _eventFd, Events = Interop.Libc.POLLIN };
        if (Interop.Libc.Poll(&fd, 1, 0) <= 0 || fd.Revents == 0)
        {
            localPort = 0;
            return false;
        }

        return TakePending(out localPort);
    }

    private bool TakePending(out uint localPort)
    {
        using var lease = new HandleLease(_handle);
        int port = Interop.XenEventChannel.Pending(lease.Value);
        localPort = port >= 0 ? (uint)port : 0;
        return port >= 0;
    }

    public unsafe void Interrupt()
    {
        ulong one = 1;
        _ = Interop.Libc.Write(_wakeFd, &one, sizeof(ulong));
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _handle.Dispose();
        _ = Interop.Libc.Close(_wakeFd);
    }
}
