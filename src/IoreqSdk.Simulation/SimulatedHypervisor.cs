using System;
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
public sealed class SimulatedHypervisor : IHypervisor
{
    /// <summary><c>MAX_NR_IOREQ_SERVERS</c>.</summary>
    public const int MaxServers = 8;

    /// <summary><c>MAX_NR_IO_RANGES</c>, per server and range type.</summary>
    public const int MaxRangesPerType = 256;

    private readonly SimulationOptions _options;
    private readonly SimulatedServerTable _servers = new();
    private readonly SimulatedPhysmap _memory;
    private readonly SimulatedVcpu[] _vcpus;
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

        _memory = new SimulatedPhysmap(_options.RamBase, _options.RamSize);
        _vcpus = new SimulatedVcpu[_options.VcpuCount];
        for (int i = 0; i < _vcpus.Length; i++)
        {
            _vcpus[i] = new SimulatedVcpu(this, i);
        }

        Interrupts = new SimulatedInterrupts(intxRedeliversWhileAsserted: _options.Architecture == GuestArchitecture.X86);
        Diagnostics = new SimulationDiagnostics(_servers);
    }

    /// <inheritdoc/>
    public GuestArchitecture Architecture => _options.Architecture;

    /// <summary>The guest's domain id.</summary>
    public ushort Domain => _options.Domain;

    /// <summary>What the guest's interrupt controller saw.</summary>
    public SimulatedInterrupts Interrupts { get; }

    /// <summary>What the simulated Xen counted of the device models' calls (ranges claimed, interrupts after close).</summary>
    public SimulationDiagnostics Diagnostics { get; }

    /// <summary>Why the domain was crashed, or <see langword="null"/> while it runs.</summary>
    public string? CrashReason => Volatile.Read(ref _crashReason);

    /// <summary>Guest RAM mappings the device models hold now.</summary>
    public int OutstandingGuestMappings => _memory.OutstandingMappings;

    /// <summary>Guest RAM, from the guest's point of view.</summary>
    public unsafe Span<byte> Ram => new((void*)_memory.Address, (int)_options.RamSize);

    /// <summary>The first guest-physical address of RAM.</summary>
    public ulong RamBase => _options.RamBase;

    /// <summary>A vCPU of the guest, to make accesses with. Each vCPU may run on its own thread.</summary>
    /// <param name="index">The vCPU id.</param>
    /// <returns>The vCPU.</returns>
    public SimulatedVcpu Vcpu(int index) => _vcpus[index];

    internal SimulationOptions Options => _options;

    /// <summary>Xen's table of the domain's ioreq servers, which routing reads and the DM ops change.</summary>
    internal SimulatedServerTable Servers => _servers;

    /// <inheritdoc/>
    public ushort CreateIoreqServer(ushort domain, BufferedIoreqMode mode)
    {
        CheckDomain(domain, "xendevicemodel_create_ioreq_server");
        if ((int)mode > 2 || (mode != BufferedIoreqMode.Off && Architecture == GuestArchitecture.Arm64))
        {
            throw Error("xendevicemodel_create_ioreq_server", Errno.EINVAL, $"buffered mode {mode} is not accepted on {Architecture}");
        }

        return _servers.Create(mode, _vcpus);
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
        // Xen fills bufioreq_port only for a server with a ring (HANDLE_BUFIOREQ) and succeeds either way; the library
        // zeroes the op first, so a server without a ring reads port 0. ENOENT means the server does not exist, which is
        // how a device model learns that its guest is gone (IoreqServerShutdown.WaitForGuestGoneAsync).
        SimulatedServer s = Server(domain, server, "xendevicemodel_get_ioreq_server_info");
        return s.BufferedPort?.Number ?? 0;
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

        _servers.MapRange(s, type, start, end, Op);
    }

    /// <inheritdoc/>
    public void UnmapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end)
    {
        const string Op = "xendevicemodel_unmap_io_range_from_ioreq_server";
        SimulatedServer s = Server(domain, server, Op);
        _servers.UnmapRange(s, type, start, end, Op);
    }

    /// <inheritdoc/>
    public void SetIoreqServerState(ushort domain, ushort server, bool enabled)
    {
        SimulatedServer s = Server(domain, server, "xendevicemodel_set_ioreq_server_state");
        _servers.SetState(s, enabled);
    }

    /// <inheritdoc/>
    public void DestroyIoreqServer(ushort domain, ushort server)
    {
        SimulatedServer s = Server(domain, server, "xendevicemodel_destroy_ioreq_server");
        _servers.Destroy(s);
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

    /// <summary>The guest rewrote its RTC: Xen's TIMEOFFSET goes to every enabled server with a ring (x86).</summary>
    /// <param name="deltaSeconds">The change in seconds; nothing is sent for 0.</param>
    public void ChangeRtcOffset(long deltaSeconds)
    {
        if (Architecture == GuestArchitecture.X86 && deltaSeconds != 0)
        {
            SimulatedRing.BroadcastTimeOffset(this, deltaSeconds);
        }
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
        return _memory.Map(firstFrame, count, Op);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _servers.DisposeAll();
        _memory.Dispose();
        foreach (SimulatedVcpu vcpu in _vcpus)
        {
            vcpu.Dispose();
        }
    }

    internal GuestPort FindGuestPort(ushort domain, uint remotePort)
    {
        CheckDomain(domain, "xenevtchn_bind_interdomain");
        return _servers.FindGuestPort(remotePort);
    }

    /// <summary>
    /// Raises a server's event for <paramref name="vcpu"/> with no request behind it, as a stray send on the port
    /// would: the device model must take it as spurious (for tests).
    /// </summary>
    internal void RaiseSpuriousEvent(ushort server, int vcpu) => _servers.Find(server, "EVTCHNOP_send").VcpuPorts[vcpu].NotifyDm();

    /// <summary>Breaks the event-channel handle the server bound <paramref name="vcpu"/>'s port on: its waits fail from now on (for tests).</summary>
    internal void FailEventChannelOf(ushort server, int vcpu) =>
        (_servers.Find(server, "xenevtchn_pending").VcpuPorts[vcpu].Handle ?? throw new InvalidOperationException($"vCPU {vcpu}'s port is not bound.")).FailWaits();

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

    /// <summary>Takes a frame out of the guest's physmap (as ballooning does).</summary>
    internal void RemoveFrame(ulong frame) => _memory.RemoveFrame(frame);

    private SimulatedServer Server(ushort domain, ushort server, string operation)
    {
        CheckDomain(domain, operation);
        return _servers.Find(server, operation);
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

    /// <summary>A DM op's failure as the tool library reports it: the call, its errno and what Xen refused.</summary>
    internal static HypervisorException Error(string operation, int errno, string what) =>
        new(operation, errno, $"{operation} failed (errno {errno}): {what}");
}
