using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Simulation;

/// <summary>
/// Xen, simulated in-process for one guest domain: the ioreq rules of Xen 4.17 (routing, limits, the CF8 latch and
/// PCI_CONFIG decode, the buffered ring with ATOMIC rebasing, INVALIDATE and TIMEOFFSET broadcasts, Arm64's
/// MMIO-only forwarding with its garbage and aborts) and a guest side (<see cref="Vcpu"/>) that makes the accesses.
/// A protocol violation by a device model crashes the simulated domain with the reason, as Xen would.
/// </summary>
public sealed partial class SimulatedHypervisor : IHypervisor
{
    /// <summary><c>MAX_NR_IOREQ_SERVERS</c>.</summary>
    public const int MaxServers = 8;

    /// <summary><c>MAX_NR_IO_RANGES</c>, per server and range type.</summary>
    public const int MaxRangesPerType = 256;

    private readonly SimulationOptions _options;
    private readonly SimulatedServer?[] _servers = new SimulatedServer?[MaxServers];
    private readonly Dictionary<uint, GuestPort> _guestPorts = new();
    private readonly NativePages _ram;
    private readonly SimulatedVcpu[] _vcpus;
    private readonly object _config = new();
    private readonly HashSet<ulong> _removedFrames = new();
    private uint _nextGuestPort = 1;

    /// <summary>How many ranges were claimed so far (a test's view of what a device model asked Xen to route).</summary>
    internal int RangeMappings { get; private set; }
    private int _outstandingGuestMappings;
    private string? _crashReason;
    private int _restrictedTo = -1;

    /// <summary>Creates the guest.</summary>
    /// <param name="options">Its shape; defaults: an x86 guest with one vCPU and 16 MiB of RAM at 0.</param>
    public SimulatedHypervisor(SimulationOptions? options = null)
    {
        // A copy, validated: the guest's shape cannot change under the simulation (a larger RamSize set afterwards would
        // make Ram a span past the end of the memory actually allocated).
        SimulationOptions given = options ?? new SimulationOptions();
        _options = new SimulationOptions
        {
            Architecture = given.Architecture,
            Domain = given.Domain,
            VcpuCount = given.VcpuCount,
            RamBase = given.RamBase,
            RamSize = given.RamSize,
            ResponseTimeout = given.ResponseTimeout,
            GarbageSeed = given.GarbageSeed,
        };
        if (_options.Architecture is not (GuestArchitecture.X86 or GuestArchitecture.Arm64))
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"{(int)_options.Architecture} is not a guest architecture.");
        }

        if (_options.VcpuCount is < 1 or > SharedIoPage.SlotCount)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "A guest has 1 to 128 vCPUs.");
        }

        if (_options.RamSize == 0 || _options.RamSize % 4096 != 0 || _options.RamBase % 4096 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Guest RAM's base and size are whole 4 KiB frames.");
        }

        // Ram is one Span<byte>: at most 2 GiB - 4 KiB, and the guest-physical range may not wrap past 2^64.
        if (_options.RamSize > int.MaxValue - 4095 || _options.RamBase + (_options.RamSize - 1) < _options.RamBase)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Simulated guest RAM is at most 2 GiB - 4 KiB and ends below 2^64.");
        }

        // Xen serves guests 1 to DOMID_FIRST_RESERVED - 1: dom0 cannot be its own device model's guest, and 0x7FF0 and
        // up are reserved ids.
        if (_options.Domain is 0 or >= 0x7FF0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "A simulated guest is domain 1 to 32751 (0 is dom0; 32752 and up are reserved).");
        }

        if ((_options.ResponseTimeout <= TimeSpan.Zero || _options.ResponseTimeout.TotalMilliseconds > int.MaxValue) && _options.ResponseTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "The response timeout is positive and below 24 days, or Timeout.InfiniteTimeSpan.");
        }

        _ram = new NativePages(_options.RamSize);
        _vcpus = new SimulatedVcpu[_options.VcpuCount];
        for (int i = 0; i < _vcpus.Length; i++)
        {
            _vcpus[i] = new SimulatedVcpu(this, i);
        }

        Interrupts = new SimulatedInterrupts(intxRedeliversWhileAsserted: _options.Architecture == GuestArchitecture.X86);
    }

    /// <inheritdoc/>
    public GuestArchitecture Architecture => _options.Architecture;

    /// <summary>The guest's domain id.</summary>
    public ushort Domain => _options.Domain;

    /// <summary>What the guest's interrupt controller saw.</summary>
    public SimulatedInterrupts Interrupts { get; }

    /// <summary>Why the domain was crashed, or <see langword="null"/> while it runs.</summary>
    public string? CrashReason => Volatile.Read(ref _crashReason);

    /// <summary>Guest RAM mappings the device models hold now.</summary>
    public int OutstandingGuestMappings => Volatile.Read(ref _outstandingGuestMappings);

    /// <summary>Guest RAM, from the guest's point of view.</summary>
    public unsafe Span<byte> Ram => new((void*)_ram.Address, (int)_options.RamSize);

    /// <summary>The first guest-physical address of RAM.</summary>
    public ulong RamBase => _options.RamBase;

    /// <summary>A vCPU of the guest, to make accesses with. Each vCPU may run on its own thread.</summary>
    /// <param name="index">The vCPU id.</param>
    /// <returns>The vCPU.</returns>
    public SimulatedVcpu Vcpu(int index) => _vcpus[index];

    internal SimulationOptions Options => _options;

    internal nint RamAddress => _ram.Address;

    /// <inheritdoc/>
    public ushort CreateIoreqServer(ushort domain, BufferedIoreqMode mode)
    {
        CheckDomain(domain, "xendevicemodel_create_ioreq_server");
        if ((int)mode > 2 || (mode != BufferedIoreqMode.Off && Architecture == GuestArchitecture.Arm64))
        {
            throw Error("xendevicemodel_create_ioreq_server", Errno.EINVAL, $"buffered mode {mode} is not accepted on {Architecture}");
        }

        lock (_config)
        {
            for (ushort id = 0; id < MaxServers; id++)
            {
                if (_servers[id] is null)
                {
                    var ports = new GuestPort[_vcpus.Length];
                    for (int v = 0; v < ports.Length; v++)
                    {
                        SimulatedVcpu vcpu = _vcpus[v];
                        ports[v] = NewGuestPort(vcpu.OnResponseNotified);
                    }

                    GuestPort? buffered = mode == BufferedIoreqMode.Off ? null : NewGuestPort(null);
                    _servers[id] = new SimulatedServer(id, mode, ports, buffered);
                    return id;
                }
            }
        }

        throw Error("xendevicemodel_create_ioreq_server", Errno.ENOSPC, $"all {MaxServers} ioreq server slots are in use");
    }

    /// <inheritdoc/>
    public IoreqServerPages AcquireIoreqServerPages(ushort domain, ushort server, bool buffered)
    {
        SimulatedServer s = Server(domain, server, "xenforeignmemory_map_resource");
        if (buffered && s.Mode == BufferedIoreqMode.Off)
        {
            throw Error("xenforeignmemory_map_resource", Errno.ENOENT, "frame 0 (the buffered ring) does not exist for a server without a ring");
        }

        s.PagesAcquired = true;
        s.HoldPages();
        var mapping = new SimulatedMapping(buffered ? s.Pages.Address : s.Pages.Address + 4096, buffered ? 2 : 1, s.ReleasePages);
        return new IoreqServerPages(mapping, s.Pages.Address + 4096, buffered ? s.Pages.Address : 0);
    }

    /// <inheritdoc/>
    public uint GetBufferedIoreqPort(ushort domain, ushort server)
    {
        SimulatedServer s = Server(domain, server, "xendevicemodel_get_ioreq_server_info");
        return s.BufferedPort?.Number
            ?? throw Error("xendevicemodel_get_ioreq_server_info", Errno.ENOENT, "the server has no buffered ring");
    }

    /// <inheritdoc/>
    public void MapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end)
    {
        const string Op = "xendevicemodel_map_io_range_to_ioreq_server";
        SimulatedServer s = Server(domain, server, Op);
        if ((uint)type > 2 || end < start)
        {
            throw Error(Op, Errno.EINVAL, $"bad range type {type} or [0x{start:x}, 0x{end:x}]");
        }

        lock (_config)
        {
            List<(ulong Start, ulong End)> ranges = s.Ranges[(int)type];
            foreach ((ulong a, ulong b) in ranges)
            {
                if (start <= b && a <= end)
                {
                    throw Error(Op, Errno.EEXIST, $"[0x{start:x}, 0x{end:x}] overlaps the server's [0x{a:x}, 0x{b:x}]");
                }
            }

            if (ranges.Count >= MaxRangesPerType)
            {
                throw Error(Op, Errno.ENOSPC, $"the server already has {MaxRangesPerType} {type} ranges");
            }

            ranges.Add((start, end));
            RangeMappings++;
        }
    }

    /// <inheritdoc/>
    public void UnmapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end)
    {
        const string Op = "xendevicemodel_unmap_io_range_from_ioreq_server";
        SimulatedServer s = Server(domain, server, Op);
        lock (_config)
        {
            List<(ulong Start, ulong End)> ranges = s.Ranges[(int)type];
            for (int i = 0; i < ranges.Count; i++)
            {
                (ulong a, ulong b) = ranges[i];
                if (start >= a && end <= b)
                {
                    // Remove the sub-range; what remains on either side stays claimed (Xen's rangeset_remove_range).
                    ranges.RemoveAt(i);
                    if (a < start)
                    {
                        ranges.Add((a, start - 1));
                    }

                    if (end < b)
                    {
                        ranges.Add((end + 1, b));
                    }

                    return;
                }
            }
        }

        throw Error(Op, Errno.ENOENT, $"[0x{start:x}, 0x{end:x}] is not a claimed {type} range");
    }

    /// <inheritdoc/>
    public void SetIoreqServerState(ushort domain, ushort server, bool enabled)
    {
        SimulatedServer s = Server(domain, server, "xendevicemodel_set_ioreq_server_state");
        lock (_config)
        {
            if (enabled && !s.Enabled)
            {
                // ioreq_server_enable → ioreq_server_update_evtchn: Xen writes each vCPU's port into its slot now.
                SharedIoPage page = s.IoreqPage;
                for (int v = 0; v < _vcpus.Length; v++)
                {
                    page.Slot(v).VcpuEventPort = s.VcpuPorts[v].Number;
                }
            }

            s.Enabled = enabled;
        }
    }

    /// <inheritdoc/>
    public void DestroyIoreqServer(ushort domain, ushort server)
    {
        SimulatedServer s = Server(domain, server, "xendevicemodel_destroy_ioreq_server");
        lock (_config)
        {
            _servers[server] = null;
            foreach (GuestPort port in s.VcpuPorts)
            {
                _guestPorts.Remove(port.Number);
            }

            if (s.BufferedPort is not null)
            {
                _guestPorts.Remove(s.BufferedPort.Number);
            }
        }

        // Xen drops its reference; the pages go once the device model unmaps them too.
        s.ReleasePages();
    }

    /// <inheritdoc/>
    public int GetVcpuCount(ushort domain)
    {
        CheckDomain(domain, "xendevicemodel_nr_vcpus");
        return _vcpus.Length;
    }

    /// <inheritdoc/>
    public IEventChannel OpenEventChannel() => new SimulatedEventChannel(this);

    /// <inheritdoc/>
    public void SetPciIntxLevel(ushort domain, PciSbdf device, int intx, bool asserted)
    {
        const string Op = "xendevicemodel_set_pci_intx_level";
        CheckDomain(domain, Op);
        X86Only(Op);
        if (device.Segment != 0 || device.Bus != 0 || (uint)intx > 3)
        {
            throw Error(Op, Errno.EINVAL, "segment and bus must be 0 and intx 0 to 3");
        }

        Interrupts.SetPciIntx(device, intx, asserted);
    }

    /// <inheritdoc/>
    public void SetIsaIrqLevel(ushort domain, int irq, bool asserted)
    {
        const string Op = "xendevicemodel_set_isa_irq_level";
        CheckDomain(domain, Op);
        X86Only(Op);
        if ((uint)irq > 15)
        {
            throw Error(Op, Errno.EINVAL, "an ISA IRQ is 0 to 15");
        }

        Interrupts.SetIsaIrq(irq, asserted);
    }

    /// <inheritdoc/>
    public void SetIrqLevel(ushort domain, uint irq, bool asserted)
    {
        const string Op = "xendevicemodel_set_irq_level";
        CheckDomain(domain, Op);
        if (Architecture != GuestArchitecture.Arm64)
        {
            throw Error(Op, Errno.EOPNOTSUPP, "set_irq_level is an Arm operation");
        }

        if (irq < 32 || irq >= 1020)
        {
            throw Error(Op, Errno.EINVAL, "only SPIs (32 and up) can be set");
        }

        Interrupts.SetSpi(irq, asserted);
    }

    /// <inheritdoc/>
    public void InjectMsi(ushort domain, ulong address, uint data)
    {
        const string Op = "xendevicemodel_inject_msi";
        CheckDomain(domain, Op);
        X86Only(Op);
        Interrupts.AddMsi(address, data);
    }

    /// <summary>The domain <see cref="Restrict"/> limited the handles to, or <see langword="null"/>.</summary>
    public ushort? RestrictedTo => Volatile.Read(ref _restrictedTo) is int d and >= 0 ? (ushort)d : null;

    /// <inheritdoc/>
    public void Restrict(ushort domain)
    {
        // Linux's privcmd RESTRICT ioctl: once set, only the same domain may be set again (EINVAL otherwise).
        int previous = Interlocked.CompareExchange(ref _restrictedTo, domain, -1);
        if (previous >= 0 && previous != domain)
        {
            throw Error("xendevicemodel_restrict", Errno.EINVAL, $"the handles are restricted to domain {previous} already");
        }
    }

    /// <inheritdoc/>
    public IMappedPages MapGuestFrames(ushort domain, ulong firstFrame, int count, bool writable)
    {
        const string Op = "xenforeignmemory_map";
        CheckDomain(domain, Op);
        ulong firstRamFrame = _options.RamBase >> 12;
        ulong ramFrames = _options.RamSize >> 12;
        if (count <= 0 || firstFrame < firstRamFrame || firstFrame - firstRamFrame > ramFrames - (ulong)count)
        {
            throw Error(Op, Errno.EINVAL, $"frames 0x{firstFrame:x}+{count} are not guest RAM");
        }

        lock (_config)
        {
            for (ulong f = firstFrame; f < firstFrame + (ulong)count; f++)
            {
                if (_removedFrames.Contains(f))
                {
                    throw Error(Op, Errno.EINVAL, $"frame 0x{f:x} was removed from the guest's physmap");
                }
            }
        }

        Interlocked.Increment(ref _outstandingGuestMappings);
        return new SimulatedMapping(_ram.Address + (nint)((firstFrame - firstRamFrame) << 12), count, () => Interlocked.Decrement(ref _outstandingGuestMappings));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_config)
        {
            for (int i = 0; i < _servers.Length; i++)
            {
                _servers[i]?.Pages.Dispose();
                _servers[i] = null;
            }
        }

        _ram.Dispose();
        foreach (SimulatedVcpu vcpu in _vcpus)
        {
            vcpu.Dispose();
        }
    }

    internal GuestPort FindGuestPort(ushort domain, uint remotePort)
    {
        CheckDomain(domain, "xenevtchn_bind_interdomain");
        lock (_config)
        {
            return _guestPorts.TryGetValue(remotePort, out GuestPort? port)
                ? port
                : throw Error("xenevtchn_bind_interdomain", Errno.EINVAL, $"guest port {remotePort} is not an ioreq server's port");
        }
    }

    internal void Crash(string reason)
    {
        Interlocked.CompareExchange(ref _crashReason, reason, null);
        throw new GuestCrashedException(reason);
    }

    internal void ThrowIfCrashed()
    {
        if (CrashReason is string reason)
        {
            throw new GuestCrashedException(reason);
        }
    }

    /// <summary>Enabled servers from the highest id down (the order Xen scans them in).</summary>
    internal SimulatedServer? Select(IoRangeType type, ulong first, ulong last)
    {
        lock (_config)
        {
            for (int id = MaxServers - 1; id >= 0; id--)
            {
                SimulatedServer? s = _servers[id];
                if (s is not null && s.Enabled && s.Claims(type, first, last))
                {
                    return s;
                }
            }
        }

        return null;
    }

    internal List<SimulatedServer> EnabledServers()
    {
        var result = new List<SimulatedServer>();
        lock (_config)
        {
            for (int id = MaxServers - 1; id >= 0; id--)
            {
                if (_servers[id] is { Enabled: true } s)
                {
                    result.Add(s);
                }
            }
        }

        return result;
    }

    internal void RemoveFrame(ulong frame)
    {
        lock (_config)
        {
            _removedFrames.Add(frame);
        }
    }

    private GuestPort NewGuestPort(Action? onNotifyFromDm)
    {
        var port = new GuestPort(_nextGuestPort++, onNotifyFromDm);
        _guestPorts.Add(port.Number, port);
        return port;
    }

    private SimulatedServer Server(ushort domain, ushort server, string operation)
    {
        CheckDomain(domain, operation);
        lock (_config)
        {
            return (server < MaxServers ? _servers[server] : null)
                ?? throw Error(operation, Errno.ENOENT, $"no ioreq server {server}");
        }
    }

    private void CheckDomain(ushort domain, string operation)
    {
        // The kernel refuses a restricted handle's call for another domain before Xen sees it: privcmd with EPERM,
        // evtchn with EACCES.
        int restricted = Volatile.Read(ref _restrictedTo);
        if (restricted >= 0 && domain != restricted)
        {
            bool evtchn = operation.StartsWith("xenevtchn", StringComparison.Ordinal);
            throw Error(operation, evtchn ? Errno.EACCES : Errno.EPERM, $"the handle is restricted to domain {restricted}");
        }

        if (domain != _options.Domain)
        {
            throw Error(operation, Errno.ENOENT, $"no domain {domain} (the simulated guest is domain {_options.Domain})");
        }
    }

    private void X86Only(string operation)
    {
        if (Architecture != GuestArchitecture.X86)
        {
            throw Error(operation, Errno.EOPNOTSUPP, $"{operation} does not exist on Arm");
        }
    }

    private static HypervisorException Error(string operation, int errno, string what) =>
        new(operation, errno, $"{operation} failed (errno {errno}): {what}");
}

public sealed partial class SimulatedHypervisor
{
    /// <summary>The guest rewrote its RTC: Xen's TIMEOFFSET goes to every enabled server with a ring (x86).</summary>
    /// <param name="deltaSeconds">The change in seconds; nothing is sent for 0.</param>
    public void ChangeRtcOffset(long deltaSeconds)
    {
        if (Architecture == GuestArchitecture.X86 && deltaSeconds != 0)
        {
            SimulatedRing.BroadcastTimeOffset(this, deltaSeconds);
        }
    }

    /// <summary>Event-channel interrupts made after their handle was closed (each a stray write on real Xen).</summary>
    internal int InterruptsAfterClose;

    /// <summary>Test hook: moves a server's ring write pointer as a corrupt producer would.</summary>
    /// <param name="server">The server id.</param>
    /// <param name="advance">How far to move it.</param>
    internal void CorruptRingWritePointer(ushort server, uint advance)
    {
        SimulatedServer s = Server(Domain, server, "test");
        s.Ring.ReadPointersAcquire(out _, out uint write);
        s.Ring.PublishWritePointer(write + advance);
        s.BufferedPort!.NotifyDm();
    }

    /// <summary>Test hook: the shared slot of a vCPU, to rewrite while a request is being handled.</summary>
    internal ref IoRequest Slot(ushort server, int vcpu) => ref Server(Domain, server, "test").IoreqPage.Slot(vcpu);
}

public sealed partial class SimulatedHypervisor
{
    /// <summary>Test hook: a server's ring pointers as they are now.</summary>
    internal (uint Read, uint Write) RingPointers(ushort server)
    {
        Server(Domain, server, "test").Ring.ReadPointersAcquire(out uint read, out uint write);
        return (read, write);
    }

    /// <summary>Test hook: starts an empty ring at an arbitrary pointer value (as a long-running LEGACY ring would be).</summary>
    internal void SetRingPointers(ushort server, uint value)
    {
        SimulatedServer s = Server(Domain, server, "test");
        s.Ring.ReadPointersAcquire(out uint read, out uint write);
        if (!s.Ring.CompareExchangePointers(read, write, value, value))
        {
            throw new InvalidOperationException("the ring moved while being reset");
        }
    }
}
