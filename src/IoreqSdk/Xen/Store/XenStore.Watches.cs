using System;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;
using IoreqSdk.Xenstore;

namespace IoreqSdk.Xen.Store;

public sealed partial class XenStore
{
    private readonly WatchEventQueue _watches;
    private Thread? _watchThread;
    private int _stopFd = -1;
    private volatile bool _stopping;

    /// <summary>Watch events dropped because the queue was full (each loss is reported once as <see cref="XenStoreWatchEvent.Overflow"/>).</summary>
    public long DroppedWatchEvents => _watches.Dropped;

    /// <inheritdoc/>
    public unsafe void Watch(string path, string token)
    {
        byte[] name = Terminated(path);
        byte[] tag = Terminated(token);
        using var lease = new HandleLease(_handle);
        byte ok;
        fixed (byte* p = name)
        fixed (byte* t = tag)
        {
            ok = Interop.XenStore.Watch(lease.Value, p, t);
        }

        if (ok == 0)
        {
            throw Error("xs_watch", path, Marshal.GetLastWin32Error());
        }
    }

    /// <inheritdoc/>
    public unsafe void Unwatch(string path, string token)
    {
        byte[] name = Terminated(path);
        byte[] tag = Terminated(token);
        using var lease = new HandleLease(_handle);
        byte ok;
        fixed (byte* p = name)
        fixed (byte* t = tag)
        {
            ok = Interop.XenStore.Unwatch(lease.Value, p, t);
        }

        if (ok == 0)
        {
            throw Error("xs_unwatch", path, Marshal.GetLastWin32Error());
        }
    }

    /// <inheritdoc/>
    public Task<XenStoreWatchEvent> ReadWatchAsync(CancellationToken cancellationToken) => _watches.ReadAsync(cancellationToken);

    private void StartWatchThread()
    {
        _stopFd = Interop.Libc.EventFd(0, Interop.Libc.EFD_CLOEXEC | Interop.Libc.EFD_NONBLOCK);
        if (_stopFd < 0)
        {
            int errno = Marshal.GetLastWin32Error();
            _handle.Dispose();
            throw Error("eventfd", null, errno);
        }

        _watchThread = new Thread(PumpWatches) { IsBackground = true, Name = "xenstore watches" };
        _watchThread.Start();
    }

    private unsafe void StopWatchThread()
    {
        if (_watchThread is null)
        {
            return;
        }

        _stopping = true;
        ulong one = 1;
        _ = Interop.Libc.Write(_stopFd, &one, sizeof(ulong));
        _watchThread.Join();
        _watchThread = null;
        _ = Interop.Libc.Close(_stopFd);
        _stopFd = -1;
        _watches.Complete();
    }

    /// <summary>
    /// The watch thread: poll the watch descriptor and the stop eventfd; on readiness take one event (xs_read_watch does
    /// not block then: libxenstore makes the descriptor readable only while its list holds an event), then drain the rest
    /// without blocking (xs_check_watch). Nothing here throws: a failure ends the pump and the queue.
    /// </summary>
    private unsafe void PumpWatches()
    {
        try
        {
            int watchFd;
            using (var lease = new HandleLease(_handle))
            {
                watchFd = Interop.XenStore.FileNumber(lease.Value);
            }

            if (watchFd < 0)
            {
                return;
            }

            Interop.Libc.PollFd* fds = stackalloc Interop.Libc.PollFd[2];
            while (!_stopping)
            {
                fds[0] = new Interop.Libc.PollFd { Fd = watchFd, Events = Interop.Libc.POLLIN };
                fds[1] = new Interop.Libc.PollFd { Fd = _stopFd, Events = Interop.Libc.POLLIN };
                int ready = Interop.Libc.Poll(fds, 2, -1);
                if (ready < 0)
                {
                    if (Marshal.GetLastWin32Error() == Errno.EINTR)
                    {
                        continue;
                    }

                    return;
                }

                if (_stopping || (fds[1].Revents & Interop.Libc.POLLIN) != 0)
                {
                    return;
                }

                if ((fds[0].Revents & Interop.Libc.POLLIN) == 0)
                {
                    if (fds[0].Revents != 0)
                    {
                        return;     // POLLHUP/POLLERR: the connection is gone.
                    }

                    continue;
                }

                using var lease = new HandleLease(_handle);
                uint count;
                byte** vector = Interop.XenStore.ReadWatch(lease.Value, &count);
                while (vector != null)
                {
                    Deliver(vector);
                    vector = Interop.XenStore.CheckWatch(lease.Value);
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // Closed underneath: the pump simply ends.
        }
        finally
        {
            _watches.Complete();
        }
    }

    private unsafe void Deliver(byte** vector)
    {
        try
        {
            _watches.Post(new XenStoreWatchEvent(FromTerminated(vector[Interop.XenStore.XS_WATCH_PATH]), FromTerminated(vector[Interop.XenStore.XS_WATCH_TOKEN])));
        }
        finally
        {
            Interop.Libc.Free(vector);
        }
    }
}
