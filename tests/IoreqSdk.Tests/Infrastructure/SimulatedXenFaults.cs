using System;
using IoreqSdk.Abi;
using IoreqSdk.Simulation;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>
/// What the engine's robustness tests do to the simulated Xen's side of a server that no guest and no device author
/// can: corrupt the buffered ring's producer pointer, rewrite a slot under the server, age the ring's pointers. They
/// reach the simulator's internal server table (the tests see the simulation's internals); the shipped simulator has
/// no such hooks.
/// </summary>
internal static class SimulatedXenFaults
{
    /// <summary>Moves a server's ring write pointer as a corrupt producer would, and signals the ring.</summary>
    public static void CorruptRingWritePointer(this SimulatedHypervisor xen, ushort server, uint advance)
    {
        SimulatedServer s = xen.Servers.Find(server, "test");
        s.Ring.ReadPointersAcquire(out _, out uint write);
        s.Ring.PublishWritePointer(write + advance);
        s.BufferedPort!.NotifyDm();
    }

    /// <summary>The shared slot of a vCPU, to rewrite while a request is being handled.</summary>
    public static ref IoRequest Slot(this SimulatedHypervisor xen, ushort server, int vcpu) =>
        ref xen.Servers.Find(server, "test").IoreqPage.Slot(vcpu);

    /// <summary>A server's ring pointers as they are now.</summary>
    public static (uint Read, uint Write) RingPointers(this SimulatedHypervisor xen, ushort server)
    {
        xen.Servers.Find(server, "test").Ring.ReadPointersAcquire(out uint read, out uint write);
        return (read, write);
    }

    /// <summary>Starts an empty ring at an arbitrary pointer value (as a long-running LEGACY ring would be).</summary>
    public static void SetRingPointers(this SimulatedHypervisor xen, ushort server, uint value)
    {
        SimulatedServer s = xen.Servers.Find(server, "test");
        s.Ring.ReadPointersAcquire(out uint read, out uint write);
        if (!s.Ring.CompareExchangePointers(read, write, value, value))
        {
            throw new InvalidOperationException("the ring moved while being reset");
        }
    }
}
