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
/// The server's loop thread waits here, so this is where it is pinned (when a CPU is given) and where a busy-polling
/// server can be parked while the paired runner measures the C floor on the same CPU. <see cref="Notification.ServerPolls"/>
/// keeps one <see cref="XenPort"/> per vCPU in native memory, shared with the C producer (<c>slot_produce_polled</c>),
/// and one eventfd its deliveries post.
/// </summary>
internal sealed unsafe class LoopbackChannel : IEventChannel
{
    private readonly byte* _page;
    private readonly int _vcpus;
    private readonly Notification _notification;
    private readonly int _toServer;
    private readonly int[] _toVcpu;
    private readonly int _serverCpu;
    private readonly int _unpark;
    private readonly int _guestInterrupt;
    private readonly uint* _injections;
    private readonly XenPort* _ports;

    // Several loops (eventfd only): this handle's slots are v % _loops == _loop, and it has a server eventfd of its
    // own; the vCPUs' eventfds are the first handle's.
    private readonly int _loop;
    private int _loops = 1;
    private readonly bool _ownsVcpuFds = true;
    private int _interrupted;
    private int _parked;
    private bool _pinned;
    private int _next;

    public LoopbackChannel(byte* page, int vcpus, Notification notification, int serverCpu)
    {
        _page = page;
        _vcpus = vcpus;
        _notification = notification;
        _serverCpu = serverCpu;
        _toVcpu = new int[vcpus];
        _unpark = EventFd();
        _guestInterrupt = EventFd();
        _injections = (uint*)NativeMemory.AllocZeroed(sizeof(uint));
        if (notification == Notification.EventFd)
        {
            _toServer = EventFd();
            for (int i = 0; i < vcpus; i++)
            {
                _toVcpu[i] = EventFd();
            }
        }
        else if (notification == Notification.ServerPolls)
        {
            _toServer = EventFd();
            _ports = (XenPort*)NativeMemory.AllocZeroed((nuint)(vcpus * sizeof(XenPort)));
            for (int i = 0; i < vcpus; i++)
            {
                _ports[i].Fd = _toServer;
            }
        }
    }

    /// <summary>Loop <paramref name="loop"/>'s handle of <paramref name="loops"/> (eventfd): its own server eventfd, the
    /// vCPUs' eventfds of <paramref name="first"/>; with <paramref name="loop"/> 0, <paramref name="first"/> itself is
    /// made loop 0's.</summary>
    public LoopbackChannel(LoopbackChannel first, int loop, int loops)
    {
        if (first._notification != Notification.EventFd)
        {
            throw new InvalidOperationException("Several loops run over eventfd only.");
        }

        _page = first._page;
        _vcpus = first._vcpus;
        _notification = Notification.EventFd;
        _serverCpu = -1;
        _toVcpu = first._toVcpu;
        _ownsVcpuFds = false;
        _unpark = EventFd();
        _guestInterrupt = EventFd();
        _injections = (uint*)NativeMemory.AllocZeroed(sizeof(uint));
        _toServer = EventFd();
        _loop = loop;
        _loops = loops;
    }

    /// <summary>Makes this (the first) handle loop 0's of <paramref name="loops"/>.</summary>
    public LoopbackChannel ServingLoopZeroOf(int loops)
    {
        _loops = loops;
        return this;
    }

    /// <summary>vCPU <paramref name="vcpu"/>'s port in the event-channel model (<see cref="Notification.ServerPolls"/>), for a C producer.</summary>
    public nint Port(int vcpu) => _notification == Notification.ServerPolls ? (nint)(_ports + vcpu) : throw new InvalidOperationException("Only a polling server's loopback models ports.");

    /// <summary>How the two sides tell each other a slot changed.</summary>
    public Notification Notification => _notification;

    /// <summary>The eventfd a producer posts to wake the server (-1 when busy-polling).</summary>
    public int ServerEventFd => _notification == Notification.EventFd ? _toServer : -1;

    /// <summary>The eventfd the server posts to wake vCPU <paramref name="vcpu"/>'s producer (-1 when busy-polling).</summary>
    public int VcpuEventFd(int vcpu) => _notification == Notification.EventFd ? _toVcpu[vcpu] : -1;

    /// <summary>The guest's interrupt controller: how many interrupts were injected so far (for a guest written in C).</summary>
    public nint Injections => (nint)_injections;

    /// <summary>The eventfd an injection posts to wake the guest (eventfd mode; busy-polling guests spin on <see cref="Injections"/>).</summary>
    public int GuestInterruptEventFd => _guestInterrupt;

    /// <summary>An interrupt for the guest (the hypervisor's injection): counted, and the guest woken.</summary>
    public void InjectGuestInterrupt()
    {
        // Release: what the device wrote before raising its line (the used ring) is visible to a guest that sees the count.
        Interlocked.Increment(ref *_injections);
        if (_notification == Notification.EventFd)
        {
            Post(_guestInterrupt);
        }
    }

    /// <summary>The guest waits for an interrupt after the <paramref name="seen"/>-th one; returns the count now.</summary>
    public uint AwaitGuestInterrupt(uint seen)
    {
        uint count;

        // Acquire pairs with the injection's increment.
        while ((count = Volatile.Read(ref *_injections)) == seen)
        {
            if (_notification == Notification.EventFd)
            {
                Take(_guestInterrupt);
            }
        }

        return count;
    }

    /// <summary>Makes a waiting server block instead of spinning (busy-poll), until <see cref="Unpark"/>.</summary>
    public void Park() => Volatile.Write(ref _parked, 1);

    /// <summary>Lets a parked server spin again.</summary>
    public void Unpark()
    {
        Volatile.Write(ref _parked, 0);
        Post(_unpark);
    }

    /// <summary>The producer of vCPU <paramref name="vcpu"/> sent a request.</summary>
    public void Signal(int vcpu)
    {
        if (_notification == Notification.EventFd)
        {
            Post(_toServer);
        }
        else if (_notification == Notification.ServerPolls)
        {
            // notify_via_xen_event_channel (as native/slot_roundtrip.c's xen_notify): pending, then delivered unless
            // masked. Both full fences, against Unmask's pair in the other order: one of the two sees the other's store.
            XenPort* port = _ports + vcpu;
            Interlocked.Exchange(ref port->Pending, 1);
            if (Volatile.Read(ref port->Masked) == 0)
            {
                Deliver(port);
            }
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
        if (_notification == Notification.ServerPolls)
        {
            // xenevtchn_unmask: what was notified while masked is delivered now.
            XenPort* port = _ports + (localPort - 1);
            Interlocked.Exchange(ref port->Masked, 0);
            if (Volatile.Read(ref port->Pending) != 0)
            {
                Deliver(port);
            }
        }
    }

    /// <summary>Xen's upcall and the evtchn device's handler in one: masked, pending cleared, queued, the waiter woken.</summary>
    private static void Deliver(XenPort* port)
    {
        if (Interlocked.CompareExchange(ref port->Masked, 1, 0) == 0)
        {
            Interlocked.Exchange(ref port->Pending, 0);
            Interlocked.Exchange(ref port->Delivered, 1);
            Post(port->Fd);
        }
    }

    public bool WaitPending(out uint localPort)
    {
        if (!_pinned && _serverCpu >= 0)
        {
            ThreadAffinity.PinCurrentThread(_serverCpu);
            _pinned = true;
        }

        while (true)
        {
            if (_notification == Notification.ServerPolls ? TryTakeDelivered(out localPort) : TryGetPending(out localPort))
            {
                return true;
            }

            // A plain read first: a locked exchange on every spin would cost the spinning side a bus lock each time.
            if (Volatile.Read(ref _interrupted) != 0 && Interlocked.Exchange(ref _interrupted, 0) != 0)
            {
                return false;
            }

            if (_notification != Notification.BusyPoll)
            {
                Take(_toServer);
            }
            else if (Volatile.Read(ref _parked) != 0)
            {
                // Blocks until Unpark posts (or returns at once on a post left from an earlier unpark; then it spins
                // once more and comes back here).
                Take(_unpark);
            }
        }
    }

    private bool TryGetPending(out uint localPort)
    {
        if (_loops != 1)
        {
            return TryGetPendingOfLoop(out localPort);
        }

        // Round-robin over the slots, as fair as Xen's upcall; acquire pairs with the producer's release of READY.
        // _next is written only when a port is found: a store on every spin would bounce this object's cache line
        // to the producer, which reads its fields while it waits (a cost of the loopback, not of the server).
        int vcpu = _next;
        for (int i = 0; i < _vcpus; i++)
        {
            if ((Volatile.Read(ref _page[(vcpu * IoRequest.SizeInBytes) + IoRequest.FlagsOffset]) & 0x0F) == (byte)IoreqState.Ready)
            {
                _next = vcpu + 1 == _vcpus ? 0 : vcpu + 1;
                localPort = (uint)(vcpu + 1);
                return true;
            }

            vcpu = vcpu + 1 == _vcpus ? 0 : vcpu + 1;
        }

        localPort = 0;
        return false;
    }

    /// <summary>As <see cref="TryGetPending"/> over this loop's slots only (round-robin among them).</summary>
    private bool TryGetPendingOfLoop(out uint localPort)
    {
        int count = (_vcpus - _loop + _loops - 1) / _loops;
        int index = _next;
        for (int i = 0; i < count; i++)
        {
            int vcpu = _loop + (index * _loops);
            if ((Volatile.Read(ref _page[(vcpu * IoRequest.SizeInBytes) + IoRequest.FlagsOffset]) & 0x0F) == (byte)IoreqState.Ready)
            {
                _next = index + 1 == count ? 0 : index + 1;
                localPort = (uint)(vcpu + 1);
                return true;
            }

            index = index + 1 == count ? 0 : index + 1;
        }

        localPort = 0;
        return false;
    }

    /// <summary>The evtchn device's ring: a port delivered and not taken yet.</summary>
    private bool TryTakeDelivered(out uint localPort)
    {
        for (int vcpu = 0; vcpu < _vcpus; vcpu++)
        {
            if (Volatile.Read(ref _ports[vcpu].Delivered) != 0 && Interlocked.Exchange(ref _ports[vcpu].Delivered, 0) != 0)
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
        // A full fence (the exchange): the flag is set before _parked is read. Only a Park racing with this can miss
        // the post; the paired runner parks between batches, with no off-loop work in flight, and Unpark posts anyway.
        Interlocked.Exchange(ref _interrupted, 1);
        if (_notification != Notification.BusyPoll)
        {
            Post(_toServer);
        }
        else if (Volatile.Read(ref _parked) != 0)
        {
            // A parked server is blocked on the unpark eventfd, not spinning: wake it to see the interruption. A spinning
            // one sees the flag (as C's busy-polling server sees its completion index): no system call on that path.
            Post(_unpark);
        }
    }

    public void Dispose()
    {
        // The hypervisor owns the channel (the server disposes it when it stops; the loopback closes it last).
    }

    public void Close()
    {
        _ = Interop.Libc.Close(_unpark);
        _ = Interop.Libc.Close(_guestInterrupt);
        NativeMemory.Free(_injections);
        if (_notification == Notification.EventFd)
        {
            _ = Interop.Libc.Close(_toServer);
            foreach (int fd in _ownsVcpuFds ? _toVcpu : [])
            {
                _ = Interop.Libc.Close(fd);
            }
        }
        else if (_notification == Notification.ServerPolls)
        {
            _ = Interop.Libc.Close(_toServer);
            NativeMemory.Free(_ports);
        }
    }

    /// <summary>One port of the event-channel model: <c>struct xen_port</c> of <c>native/slot_roundtrip.c</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct XenPort
    {
        /// <summary>Delivered and not unmasked yet: a notification only sets <see cref="Pending"/>.</summary>
        public int Masked;

        /// <summary>Notified while masked.</summary>
        public int Pending;

        /// <summary>Queued for the server's wait.</summary>
        public int Delivered;

        /// <summary>The eventfd a delivery posts.</summary>
        public int Fd;
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
