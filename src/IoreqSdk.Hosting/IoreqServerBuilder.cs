using System;
using System.Collections.Generic;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
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
    private readonly List<(Func<IServiceProvider, PciDevice> Create, int DeviceNumber)> _pciDevices = new();
    private readonly List<Func<IServiceProvider, IoreqServer, IDeviceModel>> _devices = new();

    internal IoreqServerBuilder(IServiceCollection services) => Services = services;

    /// <summary>The application's services, to register what the devices need.</summary>
    public IServiceCollection Services { get; }

    internal IReadOnlyList<(Func<IServiceProvider, PciDevice> Create, int DeviceNumber)> PciDevices => _pciDevices;

    internal IReadOnlyList<Func<IServiceProvider, IoreqServer, IDeviceModel>> Devices => _devices;

    internal Func<IServiceProvider, IHypervisor>? HypervisorFactory { get; private set; }

    /// <summary>Puts a PCI function behind the host bridge (the guest's PCI bus on x86, an ECAM bridge on Arm64).</summary>
    /// <param name="create">Creates the device, once, when the host starts.</param>
    /// <param name="deviceNumber">Its slot on bus 0 (1 to 31; on x86, pick one the toolstack's QEMU does not use).</param>
    /// <returns>This builder.</returns>
    public IoreqServerBuilder AddPciDevice(Func<IServiceProvider, PciDevice> create, int deviceNumber)
    {
        if (deviceNumber is < 0 or > 31)
        {
            throw new ArgumentOutOfRangeException(nameof(deviceNumber), deviceNumber, "A PCI device number is 0 to 31.");
        }

        _pciDevices.Add((create ?? throw new ArgumentNullException(nameof(create)), deviceNumber));
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
    /// simulated Xen of a given shape in a test, another backend). The host does not dispose it.
    /// </summary>
    /// <param name="create">Creates it, once, when the host starts.</param>
    /// <returns>This builder.</returns>
    public IoreqServerBuilder UseHypervisor(Func<IServiceProvider, IHypervisor> create)
    {
        HypervisorFactory = create ?? throw new ArgumentNullException(nameof(create));
        return this;
    }
}
