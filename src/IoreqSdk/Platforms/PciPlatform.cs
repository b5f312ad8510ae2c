using System;
using System.Collections.Generic;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;

namespace IoreqSdk.Platforms;

/// <summary>
/// What a PCI host bridge needs to know of the machine: how configuration space is reached
/// (<see cref="ConfigAccess"/>), where an I/O BAR lands (<see cref="IoSpace"/>), which windows the bus decodes, how a
/// function's INTx pin reaches the guest and whether message interrupts exist, which slots are taken, and how the
/// bridge is described to the guest. A <see cref="PciHostBridge"/> consults its platform; devices never do.
/// </summary>
public abstract class PciPlatform : GuestPlatform
{
    /// <summary>Creates the platform.</summary>
    protected PciPlatform()
    {
    }

    /// <summary>How the guest reaches configuration space.</summary>
    public abstract PciConfigAccess ConfigAccess { get; }

    /// <summary>Where an I/O BAR's bus addresses land in the guest's address spaces.</summary>
    public abstract PciIoSpace IoSpace { get; }

    /// <summary>The 32-bit non-prefetchable memory window.</summary>
    public abstract PciWindow MemoryWindow { get; }

    /// <summary>The 64-bit prefetchable memory window.</summary>
    public abstract PciWindow PrefetchableWindow { get; }

    /// <summary>The range of I/O-space (port) addresses the bus decodes.</summary>
    public abstract PciWindow IoWindow { get; }

    /// <summary>Whether MSI and MSI-X can be delivered; without them the bridge hides the capabilities and INTx serves.</summary>
    public abstract bool SupportsMessageInterrupts { get; }

    /// <summary>
    /// Whether the bridge forwards only its memory windows to the bus, so that a memory BAR programmed elsewhere does
    /// not decode (a bridge that owns its windows, as an ECAM bridge does; on x86 the firmware's hole is the rule).
    /// </summary>
    public virtual bool ConfinesMemoryBarsToWindows => false;

    /// <summary>
    /// Guest-physical windows the bridge claims or decodes, which no other bridge on the same server may share.
    /// </summary>
    public virtual IReadOnlyList<PciWindow> ExclusiveWindows => Array.Empty<PciWindow>();

    /// <summary>The line a function's INTx pin drives.</summary>
    /// <param name="hypervisor">The hypervisor.</param>
    /// <param name="domain">The guest.</param>
    /// <param name="function">The function.</param>
    /// <param name="pin">1–4 for INTA–INTD.</param>
    /// <returns>The line.</returns>
    public abstract InterruptLine CreateIntxLine(IHypervisor hypervisor, ushort domain, PciSbdf function, int pin);

    /// <summary>Why a slot cannot take a function on this platform, or <see langword="null"/> when it can.</summary>
    /// <param name="function">The address.</param>
    /// <returns>The reason.</returns>
    public virtual string? ReservedSlotReason(PciSbdf function) => null;

    /// <summary>Why a bridge cannot own a segment on this platform, or <see langword="null"/> when it can.</summary>
    /// <param name="segment">The PCI segment.</param>
    /// <returns>The reason.</returns>
    public virtual string? UnreachableSegmentReason(ushort segment) => null;
}
