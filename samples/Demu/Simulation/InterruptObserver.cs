using IoreqSdk.Devices;
using IoreqSdk.Simulation;

namespace Demu.Simulation;

/// <summary>
/// The simulated guest's view of one function's interrupt: an MSI arriving at the local APIC, or its INTx line — the
/// line the host bridge gave the function, taken as the simulated Xen delivers INTx (again and again while asserted
/// on x86's IO-APIC, once per assertion on Arm64's vGIC). Nothing here knows which architecture runs.
/// </summary>
internal sealed class InterruptObserver
{
    private readonly SimulatedHypervisor _xen;
    private readonly InterruptLine _intx;
    private long _baseline;

    public InterruptObserver(SimulatedHypervisor xen, InterruptLine intx)
    {
        _xen = xen;
        _intx = intx;
    }

    /// <summary>Whether the driver enabled MSI (then deliveries are messages, not the INTx line).</summary>
    public bool UseMsi { get; set; }

    /// <summary>Interrupts the guest took.</summary>
    public int Taken { get; private set; }

    public string Route => UseMsi ? "MSI" : _intx.Description;

    /// <summary>Notes what has been delivered so far; call before the access that should interrupt.</summary>
    public void Arm() => _baseline = Deliveries();

    /// <summary>Waits (bounded) for an interrupt after the last <see cref="Arm"/>; counts it when it comes.</summary>
    public bool Wait()
    {
        if (!BoundedPoll.Until(Pending))
        {
            return false;
        }

        Taken++;
        return true;
    }

    private bool Pending() =>
        Deliveries() > _baseline || (!UseMsi && _xen.Interrupts.IntxRedeliversWhileAsserted && _intx.IsAsserted);

    private long Deliveries() => UseMsi ? _xen.Interrupts.Msis.Count : _intx.Assertions;
}
