using System;
using IoreqSdk.Devices;
using IoreqSdk.Pci;

namespace IoreqSdk.Platforms;

/// <summary>
/// Where a bus's I/O addresses land: in the guest's port space (<see cref="PortPciIoSpace"/>, x86), or in a window of
/// MMIO space whose offsets are I/O addresses (<see cref="PioAperturePciIoSpace"/>, as real Arm PCIe controllers do).
/// Either way the device's I/O BAR sees port-relative offsets.
/// </summary>
public abstract class PciIoSpace
{
    private protected PciIoSpace()
    {
    }

    /// <summary>The guest address space an I/O BAR is mapped into.</summary>
    public abstract RegionKind Space { get; }

    /// <summary>The guest address at which the bus's I/O address <paramref name="busAddress"/> appears.</summary>
    /// <param name="busAddress">An I/O address on the bus.</param>
    /// <returns>The port number or MMIO address.</returns>
    public abstract ulong GuestAddress(ulong busAddress);

    /// <summary>Why <paramref name="size"/> I/O addresses from <paramref name="busAddress"/> cannot be reached, or <see langword="null"/>.</summary>
    /// <param name="busAddress">The first I/O address.</param>
    /// <param name="size">How many.</param>
    /// <returns>The reason.</returns>
    public abstract string? Unreachable(ulong busAddress, ulong size);
}

/// <summary>I/O addresses are the guest's ports (Xen forwards <c>IOREQ_TYPE_PIO</c>).</summary>
public sealed class PortPciIoSpace : PciIoSpace
{
    /// <summary>The one instance.</summary>
    public static PortPciIoSpace Instance { get; } = new();

    private PortPciIoSpace()
    {
    }

    /// <inheritdoc/>
    public override RegionKind Space => RegionKind.Port;

    /// <inheritdoc/>
    public override ulong GuestAddress(ulong busAddress) => busAddress;

    /// <inheritdoc/>
    public override string? Unreachable(ulong busAddress, ulong size) =>
        busAddress + size > 0x1_0000 || busAddress + size < busAddress ? FormattableString.Invariant($"ports 0x{busAddress:x}+{size} pass 0xFFFF") : null;
}

/// <summary>I/O address A is MMIO address <c>aperture base + A</c> (the device tree's I/O <c>ranges</c> entry).</summary>
public sealed class PioAperturePciIoSpace : PciIoSpace
{
    /// <summary>Describes the aperture.</summary>
    /// <param name="aperture">The MMIO window; its offset 0 is I/O address 0.</param>
    public PioAperturePciIoSpace(PciWindow aperture) => Aperture = aperture;

    /// <summary>The aperture.</summary>
    public PciWindow Aperture { get; }

    /// <inheritdoc/>
    public override RegionKind Space => RegionKind.Mmio;

    /// <inheritdoc/>
    public override ulong GuestAddress(ulong busAddress) => Aperture.Base + busAddress;

    /// <inheritdoc/>
    public override string? Unreachable(ulong busAddress, ulong size) =>
        busAddress >= Aperture.Size || size > Aperture.Size - busAddress ? $"it lies outside the PIO aperture {Aperture}" : null;
}
