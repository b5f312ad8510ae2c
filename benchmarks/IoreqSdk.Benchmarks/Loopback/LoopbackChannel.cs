using System;
using System.Runtime.InteropServices;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Benchmarks.Loopback;

/// <summary>
/// The loopback's event channels, doing what the C baseline does. Port p belongs to vCPU p − 1. A port is pending
/// while its slot's state is IOREQ_READY: busy-poll spins on the state bytes (both sides, as in C); eventfd adds one
/// eventfd that wakes the server and one per vCPU that wakes its producer — the same descriptors and calls as C.
/// </summary>
internal sealed unsafe class LoopbackChannel : IEventChannel
{
    private readonly byte* _page;
    private readonly int _vcpus;
    private readonly Notification _notification;
    private readonly int _toServer;
    private readonly int[] _toVcpu;
    private int _interrupted;
    private int _next;

    public LoopbackChannel(byte* page, int vcpus, Notification notification)
    {
        _page = page;
        _vcpus = vcpus;
        _notification = notification;
        _toVcpu = new int[vcpus];
        if (notification == Notification.EventFd)
        {
            _toServer = EventFd();
            for (int i = 0; i < vcpus; i++)
            {
                _toVcpu[i] = EventFd();
            }
        }
    }

    /// <summary>The producer of vCPU <paramref name="vcpu"/> sent a request.</summary>
    public void Signal(int vcpu)
    {
        if (_notification == Notification.EventFd)
        {
            Post(_toServer);
        }
    }

    /// <summary>The producer waits for IORESP_READY in the state byte.</summary>
    public void AwaitResponse(int vcpu, ref byte state)
    {
        while ((Volatile.Read(ref state) & 0x0F) != (byte)IoreqState.ResponseReady)
        {
            if (_notification == Notification.EventFd)
            {
                Take(_toVcpu[vcpu]);
            }
        }
    }

    public uint BindInterdomain(ushort domain, uint remotePort) => remotePort;

    public void Unbind(uint localPort)
    {
    }

    public void Notify(uint localPort)
    {
        if (_notification == Notification.EventFd)
        {
            Post(_toVcpu[localPort - 1]);
        }
    }

    public void Unmask(uint localPort)
    {
    }

    public bool WaitPending(out uint localPort)
    {
        while (true)
        {
            if (TryGetPending(out localPort))
            {
                return true;
            }

            // A plain read first: a locked exchange on every spin would cost the spinning side a bus lock each time.
            if (Volatile.Read(ref _interrupted) != 0 && Interlocked.Exchange(ref _interrupted, 0) != 0)
            {
                return false;
            }

            if (_notification == Notification.EventFd)
            {
                Take(_toServer);
            }
        }
    }

    public bool TryGetPending(out uint localPort)
    {
        // Round-robin over the slots, as fair as Xen's upcall; acquire pairs with the producer's release of READY.
        for (int i = 0; i < _vcpus; i++)
        {
            int vcpu = _next;
            _next = vcpu + 1 == _vcpus ? 0 : vcpu + 1;
            if ((Volatile.Read(ref _page[(vcpu * IoRequest.SizeInBytes) + IoRequest.FlagsOffset]) & 0x0F) == (byte)IoreqState.Ready)
            {
                localPort = (uint)(vcpu + 1);
                return true;
            }
        }

        localPort = 0;
        return false;
    }

    public void Interrupt()
    {
        Volatile.Write(ref _interrupted, 1);
        if (_notification == Notification.EventFd)
        {
            Post(_toServer);
        }
    }

    public void Dispose()
    {
        // The hypervisor owns the channel (the server disposes it when it stops; the loopback closes it last).
    }

    public void Close()
    {
        if (_notification == Notification.EventFd)
        {
            _ = Interop.Libc.Close(_toServer);
            foreach (int fd in _toVcpu)
            {
                _ = Interop.Libc.Close(fd);
            }
        }
    }

    // The SDK's own libc interop (the benchmark sees its internals), as XenEventChannel uses it.
    private static int EventFd()
    {
        int fd = Interop.Libc.EventFd(0, Interop.Libc.EFD_CLOEXEC);
        return fd >= 0 ? fd : throw new InvalidOperationException($"eventfd failed: errno {Marshal.GetLastWin32Error()}");
    }

    private static void Post(int fd)
    {
        ulong one = 1;
        _ = Interop.Libc.Write(fd, &one, sizeof(ulong));
    }

    private static void Take(int fd)
    {
        ulong count;
        _ = Interop.Libc.Read(fd, &count, sizeof(ulong));
    }
}
