using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>A simulated guest with one running server and the devices a test gives it.</summary>
internal sealed class SimulatedGuest : IDisposable
{
    public SimulatedGuest(GuestArchitecture architecture, int vcpus, params IDeviceModel[] devices)
        : this(Options(architecture, vcpus), null, devices)
    {
    }

    /// <summary>A guest of the usual shape whose server runs with <paramref name="serverOptions"/>.</summary>
    public SimulatedGuest(GuestArchitecture architecture, int vcpus, IoreqServerOptions serverOptions, params IDeviceModel[] devices)
        : this(Options(architecture, vcpus), serverOptions, null, devices)
    {
    }

    public SimulatedGuest(SimulationOptions options, Action<IoreqServer>? configure, params IDeviceModel[] devices)
        : this(options, new IoreqServerOptions(), configure, devices)
    {
    }

    /// <summary>A guest whose server runs with <paramref name="serverOptions"/> (their domain set to the guest's).</summary>
    public SimulatedGuest(SimulationOptions options, IoreqServerOptions serverOptions, Action<IoreqServer>? configure, params IDeviceModel[] devices)
    {
        Xen = new SimulatedHypervisor(options);
        serverOptions.Domain = Xen.Domain;
        Server = new IoreqServer(Xen, serverOptions);
        foreach (IDeviceModel device in devices)
        {
            Server.AddDevice(device);
        }

        configure?.Invoke(Server);
        Server.Start();
    }

    /// <summary>The simulation the short constructors use: a 20 s response timeout, for loaded machines.</summary>
    public static SimulationOptions Options(GuestArchitecture architecture, int vcpus) =>
        new() { Architecture = architecture, VcpuCount = vcpus, ResponseTimeout = TimeSpan.FromSeconds(20) };

    public SimulatedHypervisor Xen { get; }

    public IoreqServer Server { get; }

    public SimulatedVcpu Cpu => Xen.Vcpu(0);

    public void Dispose()
    {
        Server.Dispose();
        Xen.Dispose();
    }
}
