using System;
using IoreqSdk.Abi;
using IoreqSdk.Simulation;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// What the harness does to the simulated Xen's side of a server that no guest can do through a vCPU: raw buffered-ring
/// entries with any write pointer, and slot states other than READY with an event. Through the simulation's internals
/// (the fuzz program and the tests see them); the shipped simulator has no such hooks.
/// </summary>
internal static class SimulatedXenAccess
{
    /// <summary>How many ioreq servers the guest has now (a device model that leaked one leaves it here).</summary>
    public static int LiveServers(this SimulatedHypervisor xen) => xen.Servers.Count;

    /// <summary>Whether ioreq server <paramref name="server"/> exists now.</summary>
    public static bool HasServer(this SimulatedHypervisor xen, ushort server) => xen.Servers.Exists(server);

    /// <summary>Whether the server has a buffered ring.</summary>
    public static bool HasRing(this SimulatedHypervisor xen, ushort server) =>
        xen.Servers.Find(server, "fuzz").Mode != BufferedIoreqMode.Off;

    /// <summary>
    /// Writes raw entries at the ring's write pointer and publishes it advanced past them (and <paramref name="extra"/>
    /// more: a producer pointer anywhere), then signals the ring.
    /// </summary>
    public static void WriteRingEntries(this SimulatedHypervisor xen, ushort server, ReadOnlySpan<uint> headers, ReadOnlySpan<uint> data, uint extra)
    {
        SimulatedServer s = xen.Servers.Find(server, "fuzz");
        lock (s.RingLock)
        {
            s.Ring.ReadPointersAcquire(out _, out uint write);
            for (int i = 0; i < headers.Length; i++)
            {
                s.Ring.WriteSlot(write + (uint)i, new BufferedIoRequest(headers[i], data[i]));
            }

            s.Ring.PublishWritePointer(write + (uint)headers.Length + extra);
        }

        s.BufferedPort!.NotifyDm();
    }

    /// <summary>Moves the ring's two pointers to <paramref name="value"/> if it is empty (and leaves it alone otherwise).</summary>
    public static void MoveEmptyRing(this SimulatedHypervisor xen, ushort server, uint value)
    {
        SimulatedServer s = xen.Servers.Find(server, "fuzz");
        lock (s.RingLock)
        {
            s.Ring.ReadPointersAcquire(out uint read, out uint write);
            if (read == write)
            {
                s.Ring.CompareExchangePointers(read, write, value, value);
            }
        }
    }

    /// <summary>Rewrites a vCPU's slot with a state and address and, unless told not to, signals its port.</summary>
    public static void NotifyWithSlotState(this SimulatedHypervisor xen, ushort server, int vcpu, IoreqState state, ulong address, bool notify = true)
    {
        SimulatedServer s = xen.Servers.Find(server, "fuzz");
        SharedIoPage page = s.IoreqPage;
        page.Slot(vcpu).Address = address;
        page.WriteStateRelease(vcpu, state);
        if (notify)
        {
            s.VcpuPorts[vcpu].NotifyDm();
        }
    }
}
