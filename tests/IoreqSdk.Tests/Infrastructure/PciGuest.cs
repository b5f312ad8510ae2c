using System;
using System.Collections.Generic;
using System.Linq;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Simulation;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>A simulated guest with one host bridge, enumerated by the simulated firmware.</summary>
internal sealed class PciGuest : IDisposable
{
    public PciGuest(GuestArchitecture architecture, Action<PciHostBridge> populate, int vcpus = 1, PciPlatform? platform = null)
    {
        Xen = new SimulatedHypervisor(new SimulationOptions { Architecture = architecture, VcpuCount = vcpus, ResponseTimeout = TimeSpan.FromSeconds(20) });
        Platform = platform ?? GuestPlatform.For(architecture);
        Server = new IoreqServer(Xen, new IoreqServerOptions { Domain = Xen.Domain, Platform = Platform });
        Bridge = new PciHostBridge(Server, Platform);
        populate(Bridge);
        Server.Start();
        Pci = new GuestPci(Xen.Vcpu(0), Platform);
        Functions = SimulatedFirmware.EnumeratePci(Xen.Vcpu(0), Platform);
    }

    public SimulatedHypervisor Xen { get; }

    public IoreqServer Server { get; }

    public PciPlatform Platform { get; }

    public PciHostBridge Bridge { get; }

    public IReadOnlyList<EnumeratedFunction> Functions { get; }

    public SimulatedVcpu Cpu => Xen.Vcpu(0);

    public EnumeratedFunction Function(PciSbdf address) => Functions.Single(f => f.Address == address);

    public AssignedBar Bar(PciSbdf address, int index) => Function(address).Bars.Single(b => b.Index == index);

    /// <summary>PCI as the guest's driver reaches it.</summary>
    public GuestPci Pci { get; }

    public ulong Read(AssignedBar bar, ulong offset, int size, SimulatedVcpu? cpu = null) =>
        (cpu is null ? Pci : new GuestPci(cpu, Platform)).ReadBar(bar, offset, size);

    public void Write(AssignedBar bar, ulong offset, int size, ulong value) => Pci.WriteBar(bar, offset, size, value);

    public uint Config(PciSbdf address, int register, int size) => Pci.ReadConfig(address, register, size);

    public void Config(PciSbdf address, int register, int size, uint value) => Pci.WriteConfig(address, register, size, value);

    public int FindCapability(PciSbdf address, byte id) => Pci.FindCapability(address, id);

    public void Dispose()
    {
        Server.Dispose();
        Xen.Dispose();
    }
}
