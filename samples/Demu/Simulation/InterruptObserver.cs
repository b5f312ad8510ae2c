using System;
using System.Diagnostics;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Pci;
using IoreqSdk.Simulation;

namespace Demu.Simulation;

/// <summary>
/// The simulated guest's view of one function's interrupt: an MSI arriving at the local APIC (x86), the INTx line's
/// level at the IO-APIC (x86), or an SPI injected into the vGIC (Arm64, where Xen 4.17 injects on each assertion).
/// </summary>
internal sealed class InterruptObserver
{
    private readonly SimulatedHypervisor _xen;
    private readonly PciSbdf _function;
    private readonly uint? _spi;
    private int _baseline;

    public InterruptObserver(SimulatedHypervisor xen, PciPlatform platform, PciSbdf function)
    {
        _xen = xen;
        _function = function;
        _spi = platform is Arm64Platform arm ? arm.IntxSpi(function.Device, pin: 1) : null;
    }

    /// <summary>Whether the driver enabled MSI (then deliveries are messages, not the INTx line).</summary>
    public bool UseMsi { get; set; }

    /// <summary>Interrupts the guest took.</summary>
    public int Taken { get; private set; }

    public string Route => UseMsi ? "MSI" : _spi is uint spi ? $"INTA -> SPI {spi}" : "INTA (level, IO-APIC)";

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

    private bool Pending() => UseMsi || _spi is not null ? Deliveries() > _baseline : _xen.Interrupts.PciIntx(_function, 0);

    private int Deliveries() =>
        UseMsi ? _xen.Interrupts.Msis.Count : _spi is uint spi ? _xen.Interrupts.SpiInjections(spi) : 0;
}
