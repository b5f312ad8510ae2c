using System;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Simulation;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>One PCI device at 00:05.0 on a simulated guest, enumerated by firmware, with its BAR 0 and INTA.</summary>
internal sealed class DeviceOnGuest : IDisposable
{
    public static readonly PciSbdf Slot = new(0, 0, 5, 0);

    public DeviceOnGuest(GuestArchitecture architecture, PciDevice device)
    {
        Guest = new PciGuest(architecture, bridge => bridge.AddDevice(device, Slot.Device));
        Bar0 = Guest.Bar(Slot, 0);
    }

    public PciGuest Guest { get; }

    public AssignedBar Bar0 { get; }

    public SimulatedHypervisor Xen => Guest.Xen;

    public bool IsArm => Guest.Platform.Architecture == GuestArchitecture.Arm64;

    /// <summary>The SPI INTA of 00:05.0 raises on Arm64: base 44 + swizzle(5, INTA) = 45.</summary>
    public uint Spi => ((Arm64Platform)Guest.Platform).IntxSpi(Slot.Device, 1);

    public ulong Read(ulong offset, int size) => Guest.Read(Bar0, offset, size);

    public void Write(ulong offset, int size, ulong value) => Guest.Write(Bar0, offset, size, value);

    /// <summary>The INTx line as the guest's interrupt controller sees it: the level (x86) or the count of injections (Arm64).</summary>
    public int IntxObservations => IsArm ? Xen.Interrupts.SpiInjections(Spi) : (Xen.Interrupts.PciIntx(Slot, 0) ? 1 : 0);

    public void Dispose() => Guest.Dispose();
}
