using System;
using System.Runtime.InteropServices;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks.Loopback;

/// <summary>
/// The least Xen can be: one page of ioreq slots shared with an <see cref="IoreqServer"/> and a producer per vCPU that
/// does exactly what <c>benchmarks/native/slot_roundtrip.c</c>'s producer does. No routing, no ring, no checks — so a
/// round trip through it costs the slot protocol, the notification and the SDK's server, nothing else, and compares
/// with the C floor one to one. Given guest RAM (<see cref="LoopbackXen(GuestArchitecture, int, Notification, int, ulong, int)"/>)
/// it also maps guest frames — pointers into one native block, as the simulator's physmap — and injects the interrupts a
/// device raises (any ISA IRQ or SPI: there is one guest, with one interrupt controller) into
/// <see cref="LoopbackChannel.InjectGuestInterrupt"/>.
/// </summary>
internal sealed unsafe class LoopbackXen : IHypervisor
{
    private readonly byte* _page;
    private readonly int _vcpus;
    private readonly LoopbackChannel _channel;
    private readonly LoopbackChannel[] _channels;
    private int _opened;
    private readonly LoopbackGuestRam? _ram;

    /// <param name="architecture">The guest's architecture.</param>
    /// <param name="vcpus">How many slots (and producer vCPUs).</param>
    /// <param name="notification">How the sides tell each other a slot changed.</param>
    /// <param name="serverCpu">The CPU the server's loop thread is pinned to, or -1 to leave it to the scheduler.</param>
    public LoopbackXen(GuestArchitecture architecture, int vcpus, Notification notification, int serverCpu = -1)
    {
        Architecture = architecture;
        _vcpus = vcpus;
        _page = (byte*)NativeMemory.AlignedAlloc(IoreqServerResource.PageSize, IoreqServerResource.PageSize);
        new Span<byte>(_page, IoreqServerResource.PageSize).Clear();
        for (int vcpu = 0; vcpu < vcpus; vcpu++)
        {
            *(uint*)(Slot(vcpu) + IoRequest.VcpuEventPortOffset) = (uint)(vcpu + 1);   // Xen's vp_eport
        }

        _channel = new LoopbackChannel(_page, vcpus, notification, serverCpu);
        _channels = [_channel];
    }

    /// <summary>A loopback for a server with <paramref name="loops"/> loop threads (eventfd): each loop's handle its own
    /// server eventfd and slots (vCPU v on loop v % loops), the first pinned to <paramref name="serverCpu"/>.</summary>
    /// <param name="vcpus">How many slots (and producer vCPUs).</param>
    /// <param name="loops">How many loops, at most <paramref name="vcpus"/>.</param>
    /// <param name="serverCpu">The CPU loop 0 is pinned to, or -1.</param>
    public LoopbackXen(int vcpus, int loops, int serverCpu)
        : this(GuestArchitecture.X86, vcpus, Notification.EventFd, serverCpu)
    {
        if (loops < 1 || loops > vcpus)
        {
            Dispose();
            throw new ArgumentOutOfRangeException(nameof(loops), loops, $"A loopback of {vcpus} vCPU(s) has 1 to {vcpus} loops (a server never runs more loops than vCPUs).");
        }

        Loops = loops;
        _channels = new LoopbackChannel[loops];
        _channels[0] = _channel.ServingLoopZeroOf(loops);
        for (int k = 1; k < loops; k++)
        {
            _channels[k] = new LoopbackChannel(_channel, k, loops);
        }
    }

    /// <summary>How many loop threads the server runs (<see cref="CreateServer"/>).</summary>
    public int Loops { get; } = 1;

    /// <summary>The eventfd vCPU <paramref name="vcpu"/>'s producer posts to wake the loop serving it.</summary>
    public int ServerEventFd(int vcpu) => _channels[vcpu % _channels.Length].ServerEventFd;

    /// <param name="architecture">The guest's architecture.</param>
    /// <param name="vcpus">How many slots (and producer vCPUs).</param>
    /// <param name="notification">How the sides tell each other a slot changed, and how an interrupt wakes the guest.</param>
    /// <param name="serverCpu">The CPU the server's loop thread is pinned to, or -1 to leave it to the scheduler.</param>
    /// <param name="ramBase">The guest-physical address of the guest's RAM (page-aligned).</param>
    /// <param name="ramSize">Its size in bytes (whole pages).</param>
    public LoopbackXen(GuestArchitecture architecture, int vcpus, Notification notification, int serverCpu, ulong ramBase, int ramSize)
        : this(architecture, vcpus, notification, serverCpu)
    {
        _ram = new LoopbackGuestRam(ramBase, ramSize);
    }

    /// <summary>The guest's RAM, when it has some.</summary>
    public LoopbackGuestRam GuestRam => _ram ?? throw new InvalidOperationException("This loopback has no guest RAM.");

    public GuestArchitecture Architecture { get; }

    /// <summary>The shared page of ioreq slots (for a producer written in C).</summary>
    public nint Page => (nint)_page;

    /// <summary>The event channel the server waits on (its eventfds, and parking a busy-polling server).</summary>
    public LoopbackChannel Channel => _channel;

    /// <summary>The busy poll a server over a <see cref="Notification.ServerPolls"/> loopback runs with: native/slot_roundtrip.c's POLL_NS.</summary>
    public static readonly TimeSpan BusyPoll = TimeSpan.FromMicroseconds(50);

    /// <summary>A server over this loopback, as every benchmark uses it (domain 1, no buffered ring; busy-polling for
    /// <see cref="BusyPoll"/> over a <see cref="Notification.ServerPolls"/> loopback); not started.</summary>
    public IoreqServer CreateServer() => new(this, new IoreqServerOptions
    {
        Domain = 1,
        BufferedMode = BufferedIoreqMode.Off,
        BusyPoll = _channel.Notification == Notification.ServerPolls ? BusyPoll : TimeSpan.Zero,
        LoopThreads = Loops,
    });

    /// <summary>One synchronous request from vCPU <paramref name="vcpu"/>, as Xen sends it; returns the response's data.</summary>
    public ulong RoundTrip(int vcpu, IoreqType type, ulong address, uint size, bool write, ulong data)
    {
        byte* slot = Slot(vcpu);
        *(ulong*)(slot + IoRequest.AddressOffset) = address;
        *(ulong*)(slot + IoRequest.DataOffset) = data;
        *(uint*)(slot + IoRequest.CountOffset) = 1;
        *(uint*)(slot + IoRequest.SizeOffset) = size;
        slot[IoRequest.TypeOffset] = (byte)type;
        slot[IoRequest.FlagsOffset] = (byte)(write ? 0 : 1 << 5);   // dir, data_is_ptr = 0, df = 0, state = NONE

        // Release: the fields are visible before the state says READY (Xen's smp_wmb before setting the state).
        Volatile.Write(ref slot[IoRequest.FlagsOffset], (byte)((slot[IoRequest.FlagsOffset] & 0xF0) | (byte)IoreqState.Ready));
        _channel.Signal(vcpu);
        _channel.AwaitResponse(vcpu, ref slot[IoRequest.FlagsOffset]);
        ulong result = *(ulong*)(slot + IoRequest.DataOffset);
        slot[IoRequest.FlagsOffset] = (byte)(slot[IoRequest.FlagsOffset] & 0xF0);
        return result;
    }

    public ushort CreateIoreqServer(ushort domain, BufferedIoreqMode mode) => 0;

    public IoreqServerPages AcquireIoreqServerPages(ushort domain, ushort server, bool buffered) =>
        new(new NoMapping(), (nint)_page, 0);

    public uint GetBufferedIoreqPort(ushort domain, ushort server) => throw new NotSupportedException("The loopback has no buffered ring.");

    public void MapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end)
    {
    }

    public void UnmapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end)
    {
    }

    public void SetIoreqServerState(ushort domain, ushort server, bool enabled)
    {
    }

    public void DestroyIoreqServer(ushort domain, ushort server)
    {
    }

    public int GetVcpuCount(ushort domain) => _vcpus;

    // The server opens the event loop's handle first, then each request loop's, once per run.
    public IEventChannel OpenEventChannel() => _channels[_opened++ % _channels.Length];

    public void SetPciIntxLevel(ushort domain, PciSbdf device, int intx, bool asserted)
    {
    }

    // A level change reaches the guest only when the line rises (Xen 4.17's vGIC injects an SPI on 0 -> 1; an ISA IRQ
    // is an edge to the guest's IO-APIC pin as virtio-mmio uses it): the device's InterruptLine calls only on changes.
    public void SetIsaIrqLevel(ushort domain, int irq, bool asserted)
    {
        if (asserted)
        {
            _channel.InjectGuestInterrupt();
        }
    }

    public void SetIrqLevel(ushort domain, uint irq, bool asserted)
    {
        if (asserted)
        {
            _channel.InjectGuestInterrupt();
        }
    }

    public void InjectMsi(ushort domain, ulong address, uint data)
    {
    }

    public IMappedPages MapGuestFrames(ushort domain, ulong firstFrame, int count, bool writable) =>
        _ram?.Map(firstFrame, count) ?? throw new HypervisorException("xenforeignmemory_map", Errno.EINVAL, "The loopback has no guest memory.");

    // One guest, no other domain to wall off: restriction changes nothing a benchmark measures.
    public void Restrict(ushort domain)
    {
    }

    public void Dispose()
    {
        foreach (LoopbackChannel channel in _channels)
        {
            channel.Close();
        }

        _ram?.Dispose();
        NativeMemory.AlignedFree(_page);
    }

    private byte* Slot(int vcpu) => _page + (vcpu * IoRequest.SizeInBytes);

    private sealed class NoMapping : IMappedPages
    {
        public nint Address => 0;

        public int PageCount => 1;

        public void Dispose()
        {
        }
    }
}
