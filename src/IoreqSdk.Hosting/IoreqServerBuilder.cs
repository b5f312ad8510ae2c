using System;
using System.Collections.Generic;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using Microsoft.Extensions.DependencyInjection;

namespace IoreqSdk.Hosting;

/// <summary>
/// What the hosted ioreq server serves, as <see cref="IoreqServiceCollectionExtensions.AddIoreqServer(IServiceCollection, Microsoft.Extensions.Configuration.IConfiguration?)"/>
/// returns it: PCI devices behind the platform's host bridge, platform devices (a virtio-mmio transport, say) on the
/// server itself. The factories run when the host starts, in the order they were added, with the application's services.
/// </summary>
public sealed class IoreqServerBuilder
{
    private readonly List<(Func<IServiceProvider, PciDevice> Create, int DeviceNumber, int Function)> _pciDevices = new();
    private readonly List<Func<IServiceProvider, IoreqServer, IDeviceModel>> _devices = new();
    private readonly List<Action<IServiceProvider, IoreqServer>> _starting = new();
    private readonly List<Action<IServiceProvider, IoreqServer>> _started = new();

    internal IoreqServerBuilder(IServiceCollection services) => Services = services;

    /// <summary>The application's services, to register what the devices need.</summary>
    public IServiceCollection Services { get; }

    internal IReadOnlyList<(Func<IServiceProvider, PciDevice> Create, int DeviceNumber, int Function)> PciDevices => _pciDevices;

    internal IReadOnlyList<Func<IServiceProvider, IoreqServer, IDeviceModel>> Devices => _devices;

    internal IReadOnlyList<Action<IServiceProvider, IoreqServer>> Starting => _starting;

    internal IReadOnlyList<Action<IServiceProvider, IoreqServer>> Started => _started;

    internal Func<IServiceProvider, IHypervisor>? HypervisorFactory { get; private set; }

    internal bool RestrictGivenHypervisor { get; private set; }

    internal PciPlatform? Platform { get; private set; }

    internal ushort Segment { get; private set; }

    /// <summary>Puts a PCI function behind the host bridge (the guest's PCI bus on x86, an ECAM bridge on Arm64).</summary>
    /// <param name="create">Creates the device, once, when the host starts.</param>
    /// <param name="deviceNumber">Its slot on bus 0 (1 to 31; on x86, pick one the toolstack's QEMU does not use).</param>
    /// <returns>This builder.</returns>
    public IoreqServerBuilder AddPciDevice(Func<IServiceProvider, PciDevice> create, int deviceNumber) => AddPciDevice(create, deviceNumber, function: 0);

    /// <summary>Puts a PCI function behind the host bridge at a given function number of its slot.</summary>
    /// <param name="create">Creates the device, once, when the host starts.</param>
    /// <param name="deviceNumber">Its slot on bus 0 (1 to 31; on x86, pick one the toolstack's QEMU does not use).</param>
    /// <param name="function">Its function number in the slot (0 to 7; a slot's function 0 must exist for a guest to find the others).</param>
    /// <returns>This builder.</returns>
    public IoreqServerBuilder AddPciDevice(Func<IServiceProvider, PciDevice> create, int deviceNumber, int function)
    {
        if (deviceNumber is < 0 or > 31)
        {
            throw new ArgumentOutOfRangeException(nameof(deviceNumber), deviceNumber, "A PCI device number is 0 to 31.");
        }

        if (function is < 0 or > 7)
        {
            throw new ArgumentOutOfRangeException(nameof(function), function, "A PCI function number is 0 to 7.");
        }

        _pciDevices.Add((create ?? throw new ArgumentNullException(nameof(create)), deviceNumber, function));
        return this;
    }

    /// <summary>
    /// Places the PCI devices on a platform of the caller's (an Arm64 layout with its own ECAM window, memory windows
    /// and SPIs) instead of the architecture's default, and their host bridge on <paramref name="segment"/>.
    /// </summary>
    /// <param name="platform">The platform; its architecture must be the hypervisor's (checked when the host starts).</param>
    /// <param name="segment">The host bridge's PCI segment (0 on x86, where Xen decodes 0xCF8/0xCFC for segment 0 only).</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The platform's guests never reach <paramref name="segment"/> (on x86, any but 0).</exception>
    public IoreqServerBuilder UsePlatform(PciPlatform platform, ushort segment = 0)
    {
        Platform = platform ?? throw new ArgumentNullException(nameof(platform));

        // Here rather than when the host builds the bridge: the caller learns of a segment the guest cannot reach
        // where it chose it.
        if (platform.UnreachableSegmentReason(segment) is string unreachable)
        {
            throw new ArgumentOutOfRangeException(nameof(segment), segment, unreachable);
        }

        Segment = segment;
        return this;
    }

    /// <summary>
    /// Runs <paramref name="callback"/> when the host starts, after the devices are on the server and before the server
    /// starts (and, where it restricts its handles, before the restriction): a call that needs the unrestricted handles.
    /// An exception fails the host's start.
    /// </summary>
    /// <param name="callback">Gets the application's services and the server (not yet started: its <see cref="IoreqServer.Id"/> is not assigned).</param>
    /// <returns>This builder.</returns>
    public IoreqServerBuilder OnStarting(Action<IServiceProvider, IoreqServer> callback)
    {
        _starting.Add(callback ?? throw new ArgumentNullException(nameof(callback)));
        return this;
    }

    /// <summary>
    /// Runs <paramref name="callback"/> once the server serves, before the host's start completes (and so before a
    /// systemd service reports readiness): what to tell the user or check about the running server. An exception
    /// fails the host's start; to stop after a failed check instead, call <c>IHostApplicationLifetime.StopApplication</c>.
    /// </summary>
    /// <param name="callback">Gets the application's services and the running server.</param>
    /// <returns>This builder.</returns>
    public IoreqServerBuilder OnStarted(Action<IServiceProvider, IoreqServer> callback)
    {
        _started.Add(callback ?? throw new ArgumentNullException(nameof(callback)));
        return this;
    }

    /// <summary>
    /// Adds a device with its own fixed addresses (a virtio-mmio transport, a platform UART): the factory gets the
    /// server, whose <see cref="IoreqServer.CreateInterruptLine"/> gives the device its platform interrupt.
    /// </summary>
    /// <param name="create">Creates the device, once, when the host starts.</param>
    /// <returns>This builder.</returns>
    public IoreqServerBuilder AddDevice(Func<IServiceProvider, IoreqServer, IDeviceModel> create)
    {
        _devices.Add(create ?? throw new ArgumentNullException(nameof(create)));
        return this;
    }

    /// <summary>
    /// Serves on a hypervisor of the caller's instead of the one <see cref="IoreqServerHostOptions.Mode"/> names (a
    /// simulated Xen of a given shape in a test, another backend, a real Xen the application opened and checked
    /// itself). The host does not dispose it.
    /// </summary>
    /// <param name="create">Creates it, once, when the host starts.</param>
    /// <param name="restrictHandles">
    /// Whether <see cref="IoreqServerHostOptions.RestrictHandlesToDomain"/> applies to it, as to the real Xen the host
    /// opens itself (default: no, the hypervisor's handles stay as the caller made them).
    /// </param>
    /// <returns>This builder.</returns>
    public IoreqServerBuilder UseHypervisor(Func<IServiceProvider, IHypervisor> create, bool restrictHandles = false)
    {
        HypervisorFactory = create ?? throw new ArgumentNullException(nameof(create));
        RestrictGivenHypervisor = restrictHandles;
        return this;
    }
}
