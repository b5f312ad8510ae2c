using System;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Pci;

/// <summary>
/// Everything about PCI that is architecture: how configuration space is reached, whether I/O BARs are ports or an
/// aperture in MMIO space, how INTx and MSI are delivered, and the default windows. A <see cref="PciHostBridge"/>
/// consults its platform; devices never do.
/// </summary>
public abstract class PciPlatform
{
    private protected PciPlatform()
    {
    }

    /// <summary>The guest architecture this platform serves.</summary>
    public abstract GuestArchitecture Architecture { get; }

    /// <summary>The 32-bit non-prefetchable memory window.</summary>
    public abstract PciWindow MemoryWindow { get; }

    /// <summary>The 64-bit prefetchable memory window.</summary>
    public abstract PciWindow PrefetchableWindow { get; }

    /// <summary>The range of I/O-space (port) addresses the bus decodes.</summary>
    public abstract PciWindow IoWindow { get; }

    /// <summary>Whether MSI and MSI-X can be delivered.</summary>
    public abstract bool SupportsMessageInterrupts { get; }

    /// <summary>
    /// Checks the rules that involve several properties (each property checks its own when it is set); a
    /// <see cref="PciHostBridge"/> calls it when it is created, so a bad layout fails there, not at the guest's first access.
    /// </summary>
    /// <exception cref="ArgumentException">The layout is inconsistent; <see cref="ArgumentException.ParamName"/> names the property.</exception>
    public virtual void Validate()
    {
    }
}
