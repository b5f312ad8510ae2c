using System;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Simulation;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>
/// One PCI device at 00:05.0 on a simulated guest through the public harness (<see cref="SimulatedPciGuest"/>), with
/// its BAR 0 and INTA: the device tests use what a user of the packages has.
/// </summary>
internal sealed class DeviceOnGuest : IDisposable
{
    public static readonly PciSbdf Slot = new(0, 0, SimulatedPciGuest.DefaultDeviceNumber, 0);

    public DeviceOnGuest(GuestArchitecture architecture, PciDevice device)
    {
        Harness = SimulatedPciGuest.Create(device, architecture, SimulatedPciGuest.DefaultDeviceNumber,
            options: new SimulationOptions { Architecture = architecture, ResponseTimeout = TimeSpan.FromSeconds(20) });
        Guest = new View(Harness);
        Bar0 = Harness.Bar(0);
    }

    public SimulatedPciGuest Harness { get; }

    /// <summary>Configuration space by address, as the tests written for <see cref="PciGuest"/> reach it.</summary>
    public View Guest { get; }

    public AssignedBar Bar0 { get; }

    public SimulatedHypervisor Xen => Harness.Xen;

    public bool IsArm => Harness.Bridge.Platform.Architecture == GuestArchitecture.Arm64;

    /// <summary>The SPI INTA of 00:05.0 raises on Arm64: base 44 + swizzle(5, INTA) = 45 (for tests of Xen's side).</summary>
    public uint Spi => ((Arm64Platform)Harness.Bridge.Platform).IntxSpi(Slot.Device, 1);

    public ulong Read(ulong offset, int size) => Harness.Pci.ReadBar(Bar0, offset, size);

    public void Write(ulong offset, int size, ulong value) => Harness.Pci.WriteBar(Bar0, offset, size, value);

    /// <summary>
    /// INTA as the guest's interrupt controller takes it, through the one line the bridge gave the pin: its level where
    /// Xen redelivers while asserted (x86's IO-APIC), its count of assertions where each is one injection (Arm64).
    /// </summary>
    public long IntxObservations =>
        Xen.Interrupts.IntxRedeliversWhileAsserted ? (Harness.Intx!.IsAsserted ? 1 : 0) : Harness.Intx!.Assertions;

    public void Dispose() => Harness.Dispose();

    /// <summary>The harness's configuration space under the address-taking names the tests use.</summary>
    internal sealed class View
    {
        private readonly SimulatedPciGuest _harness;

        public View(SimulatedPciGuest harness) => _harness = harness;

        public EnumeratedFunction Function(PciSbdf address) => address == _harness.Address ? _harness.Function : throw new ArgumentException($"The guest has its device at {_harness.Address}.", nameof(address));

        public uint Config(PciSbdf address, int register, int size) => _harness.Pci.ReadConfig(address, register, size);

        public void Config(PciSbdf address, int register, int size, uint value) => _harness.Pci.WriteConfig(address, register, size, value);

        public int FindCapability(PciSbdf address, byte id) => _harness.Pci.FindCapability(address, id);
    }
}
