using System.Threading;

namespace IoreqSdk.Simulation;

/// <summary>
/// What the simulated Xen counts of the device models' calls that a real Xen does not report: for a device's tests
/// to check that a guest's action made its device model claim ranges (a BAR it moved, memory decode it enabled) or
/// did not (a sizing probe), and that no event channel was interrupted after its handle was closed.
/// </summary>
public sealed class SimulationDiagnostics
{
    private readonly SimulatedServerTable _servers;
    private int _interruptsAfterClose;

    internal SimulationDiagnostics(SimulatedServerTable servers) => _servers = servers;

    /// <summary>
    /// Ranges the device models claimed since the guest was created: every successful
    /// <c>xendevicemodel_map_io_range_to_ioreq_server</c> (ports, memory) and PCI-function claim, by any server.
    /// Releases do not lower it, so a re-claim at the same address shows as one more.
    /// </summary>
    public int RangeClaims => _servers.RangeClaims;

    /// <summary>
    /// Event-channel interrupts (<see cref="Hypervisor.IEventChannel.Interrupt"/>) made on a handle after it was
    /// disposed. Harmless in the simulation; with Linux's evtchn device it is a write to a closed descriptor's number,
    /// which the process may have reused for another file: a device model's bug, which should stay at 0.
    /// </summary>
    public int InterruptsAfterClose => Volatile.Read(ref _interruptsAfterClose);

    internal void CountInterruptAfterClose() => Interlocked.Increment(ref _interruptsAfterClose);
}
