using System;
using System.Collections.Generic;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Simulation;

/// <summary>
/// Xen's table of one domain's ioreq servers (<c>MAX_NR_IOREQ_SERVERS</c> slots), each with its rangesets and state,
/// and the unbound event channels Xen allocates in the guest's port space for them. Xen's routing reads it (which
/// enabled server claims an access); the device model's DM ops change it. One lock serialises both, as Xen's
/// per-domain ioreq-server lock does.
/// </summary>
internal sealed class SimulatedServerTable
{
    private readonly SimulatedServer?[] _servers = new SimulatedServer?[SimulatedHypervisor.MaxServers];
    private readonly Dictionary<uint, GuestPort> _guestPorts = new();
    private readonly object _gate = new();
    private uint _nextGuestPort = 1;
    private int _rangeClaims;

    /// <summary>Ranges claimed so far, by every server of the domain (<see cref="SimulationDiagnostics.RangeClaims"/>).</summary>
    public int RangeClaims => Volatile.Read(ref _rangeClaims);

    /// <summary>Takes the lowest free slot: its pages, one guest port per vCPU and, with a ring, the ring's port.</summary>
    public ushort Create(BufferedIoreqMode mode, SimulatedVcpu[] vcpus)
    {
        lock (_gate)
        {
            for (ushort id = 0; id < _servers.Length; id++)
            {
                if (_servers[id] is null)
                {
                    var ports = new GuestPort[vcpus.Length];
                    for (int v = 0; v < ports.Length; v++)
                    {
                        ports[v] = NewGuestPort(vcpus[v].OnResponseNotified);
                    }

                    GuestPort? buffered = mode == BufferedIoreqMode.Off ? null : NewGuestPort(null);
                    _servers[id] = new SimulatedServer(id, mode, ports, buffered);
                    return id;
                }
            }
        }

        throw SimulatedHypervisor.Error("xendevicemodel_create_ioreq_server", Errno.ENOSPC, $"all {_servers.Length} ioreq server slots are in use");
    }

    /// <summary>The servers that exist now (created and not destroyed): a harness's leak check.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                int count = 0;
                foreach (SimulatedServer? server in _servers)
                {
                    count += server is null ? 0 : 1;
                }

                return count;
            }
        }
    }

    /// <summary>Whether slot <paramref name="id"/> holds a server (ENOENT-free, unlike <see cref="Find"/>).</summary>
    public bool Exists(ushort id)
    {
        lock (_gate)
        {
            return id < _servers.Length && _servers[id] is not null;
        }
    }

    /// <summary>The server in slot <paramref name="id"/>, or ENOENT for <paramref name="operation"/>.</summary>
    public SimulatedServer Find(ushort id, string operation)
    {
        lock (_gate)
        {
            return (id < _servers.Length ? _servers[id] : null)
                ?? throw SimulatedHypervisor.Error(operation, Errno.ENOENT, $"no ioreq server {id}");
        }
    }

    /// <summary><c>map_io_range_to_ioreq_server</c>: no overlap with the server's own ranges, at most <see cref="SimulatedHypervisor.MaxRangesPerType"/> a type.</summary>
    public void MapRange(SimulatedServer server, IoRangeType type, ulong start, ulong end, string operation)
    {
        lock (_gate)
        {
            SimulatedRangeSet ranges = server.Ranges[(int)type];
            if (ranges.TryFindOverlap(start, end, out (ulong Start, ulong End) overlap))
            {
                throw SimulatedHypervisor.Error(operation, Errno.EEXIST, $"[0x{start:x}, 0x{end:x}] overlaps the server's [0x{overlap.Start:x}, 0x{overlap.End:x}]");
            }

            if (ranges.Count >= SimulatedHypervisor.MaxRangesPerType)
            {
                throw SimulatedHypervisor.Error(operation, Errno.ENOSPC, $"the server already has {SimulatedHypervisor.MaxRangesPerType} {type} ranges");
            }

            ranges.Add(start, end);
            _rangeClaims++;
        }
    }

    /// <summary><c>unmap_io_range_from_ioreq_server</c>: a sub-range of one claimed range (Xen's <c>rangeset_remove_range</c>).</summary>
    public void UnmapRange(SimulatedServer server, IoRangeType type, ulong start, ulong end, string operation)
    {
        lock (_gate)
        {
            if (server.Ranges[(int)type].Remove(start, end))
            {
                return;
            }
        }

        throw SimulatedHypervisor.Error(operation, Errno.ENOENT, $"[0x{start:x}, 0x{end:x}] is not a claimed {type} range");
    }

    /// <summary>Enables or disables a server; enabling writes each vCPU's port into its slot.</summary>
    public void SetState(SimulatedServer server, bool enabled)
    {
        lock (_gate)
        {
            if (enabled && !server.Enabled)
            {
                // ioreq_server_enable → ioreq_server_update_evtchn: Xen writes each vCPU's port into its slot now.
                SharedIoPage page = server.IoreqPage;
                for (int v = 0; v < server.VcpuPorts.Length; v++)
                {
                    page.Slot(v).VcpuEventPort = server.VcpuPorts[v].Number;
                }
            }

            server.Enabled = enabled;
        }
    }

    /// <summary>Frees the slot and the server's guest ports.</summary>
    public void Destroy(SimulatedServer server)
    {
        lock (_gate)
        {
            _servers[server.Id] = null;
            foreach (GuestPort port in server.VcpuPorts)
            {
                _guestPorts.Remove(port.Number);
            }

            if (server.BufferedPort is not null)
            {
                _guestPorts.Remove(server.BufferedPort.Number);
            }
        }

        // Xen drops its reference; the pages go once the device model unmaps them too.
        server.ReleasePages();
    }

    /// <summary>The unbound guest port a device model binds to, or EINVAL.</summary>
    public GuestPort FindGuestPort(uint remotePort)
    {
        lock (_gate)
        {
            return _guestPorts.TryGetValue(remotePort, out GuestPort? port)
                ? port
                : throw SimulatedHypervisor.Error("xenevtchn_bind_interdomain", Errno.EINVAL, $"guest port {remotePort} is not an ioreq server's port");
        }
    }

    /// <summary>The enabled server that claims the access, scanning from the highest id down (the order Xen scans them in).</summary>
    public SimulatedServer? Select(IoRangeType type, ulong first, ulong last)
    {
        lock (_gate)
        {
            for (int id = _servers.Length - 1; id >= 0; id--)
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

    /// <summary>The enabled servers, from the highest id down (broadcasts: INVALIDATE, TIMEOFFSET).</summary>
    public List<SimulatedServer> Enabled()
    {
        var result = new List<SimulatedServer>();
        lock (_gate)
        {
            for (int id = _servers.Length - 1; id >= 0; id--)
            {
                if (_servers[id] is { Enabled: true } s)
                {
                    result.Add(s);
                }
            }
        }

        return result;
    }

    /// <summary>The guest is gone: every server's pages are freed, mapped or not.</summary>
    public void DisposeAll()
    {
        lock (_gate)
        {
            for (int i = 0; i < _servers.Length; i++)
            {
                _servers[i]?.Pages.Dispose();
                _servers[i] = null;
            }
        }
    }

    private GuestPort NewGuestPort(Action? onNotifyFromDm)
    {
        var port = new GuestPort(_nextGuestPort++, onNotifyFromDm);
        _guestPorts.Add(port.Number, port);
        return port;
    }
}
