using System;
using System.Collections.Generic;
using IoreqSdk.Hypervisor;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Virtio.Pci;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>
/// The test harness for a virtio device: the device behind a transport on a simulated x86 or Arm64 guest, served by a
/// running ioreq server, probed and brought up by a guest driver that does what Linux's virtio core does. Two lines:
/// <code>
/// using var guest = SimulatedVirtioGuest.Create(new VirtioRng(), VirtioTransportKind.Mmio, GuestArchitecture.Arm64);
/// guest.Driver.Submit(0, [new GuestBuffer(guest.Driver.Allocate(64), 64, deviceWritable: true)]);
/// </code>
/// </summary>
/// <remarks>
/// Where the device sits: for virtio-mmio, <see cref="SimulationOptions.VirtioMmioBase"/> and <see
/// cref="SimulationOptions.VirtioMmioLine"/> (on Arm64, Xen's first virtio-mmio slot and SPI 33, unless set); for
/// virtio-pci, 00:05.0 behind the platform's host bridge (<see cref="PciGuest"/>). The driver's rings and buffers come
/// from guest RAM above its first MiB.
/// </remarks>
public sealed class SimulatedVirtioGuest : IDisposable
{
    private SimulatedVirtioGuest(SimulatedHypervisor xen, IoreqServer server, VirtioDevice device, VirtioMmioTransport? mmio, SimulatedPciGuest? pci, GuestVirtioTransport transport)
    {
        Xen = xen;
        Server = server;
        Device = device;
        MmioTransport = mmio;
        PciGuest = pci;
        PciTransport = pci?.Device as VirtioPciTransport;
        Transport = transport;
        Memory = new SimulatedGuestMemory(xen);
        ulong start = xen.RamBase + Math.Min(0x10_0000UL, Memory.Size / 2);
        Allocator = new GuestRamAllocator(Memory, start, xen.RamBase + Memory.Size);
        Driver = new GuestVirtioDriver(transport, Memory, Allocator);
    }

    /// <summary>The simulated Xen (its vCPUs, RAM and interrupt record).</summary>
    public SimulatedHypervisor Xen { get; }

    /// <summary>The running ioreq server.</summary>
    public IoreqServer Server { get; }

    /// <summary>The device under test.</summary>
    public VirtioDevice Device { get; }

    /// <summary>The server's side of the virtio-mmio transport (null for other transports).</summary>
    public VirtioMmioTransport? MmioTransport { get; }

    /// <summary>The server's side of the virtio-pci transport (null for other transports).</summary>
    public VirtioPciTransport? PciTransport { get; }

    /// <summary>The PCI view of a virtio-pci device: its configuration space, BARs, INTx line and messages (null for other transports).</summary>
    public SimulatedPciGuest? PciGuest { get; }

    /// <summary>The transport as the guest's driver reaches it (<see cref="GuestVirtioMmio"/>, <see cref="GuestVirtioPci"/>).</summary>
    public GuestVirtioTransport Transport { get; }

    /// <summary>The guest's driver (brought up by <see cref="Create"/> unless asked not to).</summary>
    public GuestVirtioDriver Driver { get; }

    /// <summary>The driver's queues.</summary>
    public IReadOnlyList<GuestVirtqueue> Queues => Driver.Queues;

    /// <summary>Guest RAM as the guest sees it.</summary>
    public SimulatedGuestMemory Memory { get; }

    /// <summary>The allocator the driver takes rings and buffers from.</summary>
    public GuestRamAllocator Allocator { get; }

    /// <summary>
    /// Puts <paramref name="device"/> on a simulated guest behind <paramref name="transport"/> and, unless told not to,
    /// brings it up with the driver.
    /// </summary>
    /// <param name="device">The virtio device (not attached to a transport yet).</param>
    /// <param name="transport">The transport.</param>
    /// <param name="architecture">The guest's architecture.</param>
    /// <param name="features">The features the driver accepts beyond VERSION_1, if the device offers them.</param>
    /// <param name="queueCount">How many queues the driver sets up (all the device has, unless given).</param>
    /// <param name="queueSize">The largest size the driver gives a queue.</param>
    /// <param name="initialize">Whether to bring the device up (false: leave it reset, for tests that drive the registers).</param>
    /// <param name="options">The simulated guest's shape; its architecture must be <paramref name="architecture"/>.</param>
    /// <returns>The running guest; dispose it to stop the server.</returns>
    /// <exception cref="NotSupportedException"><paramref name="transport"/> is not a transport the harness knows.</exception>
    public static SimulatedVirtioGuest Create(
        VirtioDevice device,
        VirtioTransportKind transport = VirtioTransportKind.Mmio,
        GuestArchitecture architecture = GuestArchitecture.X86,
        ulong features = 0,
        int? queueCount = null,
        ushort queueSize = 256,
        bool initialize = true,
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

        if (transport is not (VirtioTransportKind.Mmio or VirtioTransportKind.Pci))
        {
            throw new NotSupportedException($"{(int)transport} is not a virtio transport.");
        }

        SimulationOptions shape = options ?? new SimulationOptions { Architecture = architecture };
        if (transport == VirtioTransportKind.Pci)
        {
            return CreatePci(device, shape, features, queueCount, queueSize, initialize);
        }

        var xen = new SimulatedHypervisor(shape);
        IoreqServer? server = null;
        try
        {
            server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, Platform = GuestPlatform.For(architecture) });
            ulong address = shape.VirtioMmioBase;
            uint line = shape.VirtioMmioLine;
            var mmio = new VirtioMmioTransport(device, address, server.CreateInterruptLine(line));
            server.AddDevice(mmio);
            server.Start();
            var guest = new SimulatedVirtioGuest(xen, server, device, mmio, null, new GuestVirtioMmio(xen, address, line));
            if (initialize)
            {
                guest.Driver.Initialize(features, queueCount ?? device.QueueCount, queueSize);
            }

            return guest;
        }
        catch
        {
            server?.Dispose();
            xen.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The device behind <see cref="VirtioPciTransport"/> at <see cref="SimulatedPciGuest.DefaultDeviceNumber"/>,
    /// enumerated by the simulated firmware; the guest's driver uses MSI-X where the platform delivers messages
    /// (x86) and INTx with the ISR where it does not (Arm64).
    /// </summary>
    private static SimulatedVirtioGuest CreatePci(VirtioDevice device, SimulationOptions shape, ulong features, int? queueCount, ushort queueSize, bool initialize)
    {
        SimulatedPciGuest pci = SimulatedPciGuest.Create(new VirtioPciTransport(device), shape.Architecture, options: shape);
        try
        {
            var guest = new SimulatedVirtioGuest(pci.Xen, pci.Server, device, null, pci, new GuestVirtioPci(pci));
            if (initialize)
            {
                guest.Driver.Initialize(features, queueCount ?? device.QueueCount, queueSize);
            }

            return guest;
        }
        catch
        {
            pci.Dispose();
            throw;
        }
    }

    /// <summary>Waits, bounded, for something the device does on its own thread to show.</summary>
    /// <param name="condition">What to wait for.</param>
    /// <param name="timeout">How long at most (10 s unless given).</param>
    /// <returns>Whether it came true in time.</returns>
    public static bool WaitUntil(Func<bool> condition, TimeSpan? timeout = null) => SimulatedPciGuest.WaitUntil(condition, timeout);

    /// <summary>Stops the server (destroying it in the simulated Xen) and the simulation.</summary>
    public void Dispose()
    {
        Server.Dispose();
        Xen.Dispose();
    }
}
