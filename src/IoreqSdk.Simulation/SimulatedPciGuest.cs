using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;

namespace IoreqSdk.Simulation;

/// <summary>
/// The test harness for a PCI device: the device behind a host bridge on a simulated x86 or Arm64 guest, served by a
/// running ioreq server and enumerated by the simulated firmware, reached as the guest's driver reaches it. Two lines:
/// <code>
/// using var guest = SimulatedPciGuest.Create(new MyDevice(), GuestArchitecture.Arm64);
/// Assert.That(guest.ReadBar(0, offset: 0, size: 4), Is.EqualTo(0x010000EDUL));
/// </code>
/// Interrupts are observed the same way on every platform: <see cref="Intx"/> is the line the bridge gave the
/// function's pin (its level and how many times it was asserted), <see cref="Messages"/> the MSIs delivered.
/// </summary>
public sealed class SimulatedPciGuest : IDisposable
{
    /// <summary>Where <see cref="Create"/> puts the device unless told otherwise: 00:05.0.</summary>
    public const int DefaultDeviceNumber = 5;

    private SimulatedPciGuest(SimulatedHypervisor xen, IoreqServer server, PciHostBridge bridge, PciDevice device, PciSbdf address)
    {
        Xen = xen;
        Server = server;
        Bridge = bridge;
        Device = device;
        Address = address;
        Pci = new GuestPci(xen.Vcpu(0), bridge.Platform);
        Functions = SimulatedFirmware.EnumeratePci(xen.Vcpu(0), bridge.Platform, bridge.Segment);
        Function = Functions.Single(f => f.Address == address);
    }

    /// <summary>The simulated Xen (its vCPUs, RAM and interrupt record).</summary>
    public SimulatedHypervisor Xen { get; }

    /// <summary>The running ioreq server.</summary>
    public IoreqServer Server { get; }

    /// <summary>The host bridge the device sits behind.</summary>
    public PciHostBridge Bridge { get; }

    /// <summary>The device under test.</summary>
    public PciDevice Device { get; }

    /// <summary>Where it sits.</summary>
    public PciSbdf Address { get; }

    /// <summary>Every function the firmware found behind the bridge (an ECAM bridge's own 00:00.0 included).</summary>
    public IReadOnlyList<EnumeratedFunction> Functions { get; }

    /// <summary>The device as the firmware found it, its BARs assigned.</summary>
    public EnumeratedFunction Function { get; }

    /// <summary>PCI as the guest's driver reaches it (configuration space, BARs) through vCPU 0.</summary>
    public GuestPci Pci { get; }

    /// <summary>The line the device's INTx pin drives (<see langword="null"/> without a pin): its level and assertions.</summary>
    public InterruptLine? Intx => Bridge.IntxLineOf(Device);

    /// <summary>The message-signalled interrupts the guest received so far, in order (address, data).</summary>
    public IReadOnlyCollection<(ulong Address, uint Data)> Messages => Xen.Interrupts.Msis;

    /// <summary>Puts <paramref name="device"/> on a simulated guest and enumerates it, as firmware would.</summary>
    /// <param name="device">The device.</param>
    /// <param name="architecture">The guest's architecture (the SDK's platform for it unless <paramref name="platform"/> is given).</param>
    /// <param name="deviceNumber">Its slot on bus 0.</param>
    /// <param name="platform">A platform of its own (its <see cref="GuestPlatform.Architecture"/> must match).</param>
    /// <param name="options">The simulated guest's shape (vCPUs, RAM); its architecture must be <paramref name="architecture"/>.</param>
    /// <returns>The running guest; dispose it to stop the server.</returns>
    public static SimulatedPciGuest Create(
        PciDevice device,
        GuestArchitecture architecture = GuestArchitecture.X86,
        int deviceNumber = DefaultDeviceNumber,
        PciPlatform? platform = null,
        SimulationOptions? options = null)
    {
        if (device is null)
        {
            throw new ArgumentNullException(nameof(device));
        }

        if (options is not null && options.Architecture != architecture)
        {
            throw new ArgumentException($"The options describe a {options.Architecture} guest and the harness was asked for {architecture}.", nameof(options));
        }

        var xen = new SimulatedHypervisor(options ?? new SimulationOptions { Architecture = architecture });
        IoreqServer? server = null;
        try
        {
            PciPlatform chosen = platform ?? GuestPlatform.For(architecture);
            server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, Platform = chosen });
            var bridge = new PciHostBridge(server, chosen);
            PciSbdf address = bridge.AddDevice(device, deviceNumber);
            server.Start();
            return new SimulatedPciGuest(xen, server, bridge, device, address);
        }
        catch
        {
            server?.Dispose();
            xen.Dispose();
            throw;
        }
    }

    /// <summary>A BAR as the firmware assigned it.</summary>
    /// <param name="index">0–5, or 6 for the expansion ROM.</param>
    /// <returns>The BAR.</returns>
    public AssignedBar Bar(int index) =>
        Function.Bars.FirstOrDefault(b => b.Index == index) ?? throw new ArgumentOutOfRangeException(nameof(index), index, $"{Address} has no BAR {index}.");

    /// <summary>Reads a BAR as the guest's driver does (port I/O, MMIO or the PIO aperture, as the platform has it).</summary>
    /// <param name="bar">The BAR's index.</param>
    /// <param name="offset">The offset in it.</param>
    /// <param name="size">1, 2, 4 or 8.</param>
    /// <returns>The value.</returns>
    public ulong ReadBar(int bar, ulong offset, int size) => Pci.ReadBar(Bar(bar), offset, size);

    /// <summary>Writes a BAR as the guest's driver does.</summary>
    /// <param name="bar">The BAR's index.</param>
    /// <param name="offset">The offset in it.</param>
    /// <param name="size">1, 2, 4 or 8.</param>
    /// <param name="value">The value.</param>
    public void WriteBar(int bar, ulong offset, int size, ulong value) => Pci.WriteBar(Bar(bar), offset, size, value);

    /// <summary>Reads the device's configuration space.</summary>
    /// <param name="register">The offset.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <returns>The value.</returns>
    public uint ReadConfig(int register, int size) => Pci.ReadConfig(Address, register, size);

    /// <summary>Writes the device's configuration space.</summary>
    /// <param name="register">The offset.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <param name="value">The value.</param>
    public void WriteConfig(int register, int size, uint value) => Pci.WriteConfig(Address, register, size, value);

    /// <summary>Finds a capability by walking the list, as a driver does.</summary>
    /// <param name="id">The capability id.</param>
    /// <returns>Its offset, or 0.</returns>
    public int FindCapability(byte id) => Pci.FindCapability(Address, id);

    /// <summary>
    /// Waits, bounded, for something the device does on its own thread to show (a status bit, an interrupt).
    /// </summary>
    /// <param name="condition">What to wait for.</param>
    /// <param name="timeout">How long at most (10 s unless given).</param>
    /// <returns>Whether it came true in time.</returns>
    public static bool WaitUntil(Func<bool> condition, TimeSpan? timeout = null)
    {
        if (condition is null)
        {
            throw new ArgumentNullException(nameof(condition));
        }

        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(10);
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > limit)
            {
                return false;
            }

            Thread.Yield();
        }

        return true;
    }

    /// <summary>Stops the server (destroying it in the simulated Xen) and the simulation.</summary>
    public void Dispose()
    {
        Server.Dispose();
        Xen.Dispose();
    }
}
