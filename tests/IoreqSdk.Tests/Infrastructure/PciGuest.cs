using System;
using System.Collections.Generic;
using System.Linq;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Server;
using IoreqSdk.Simulation;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>A simulated guest with one host bridge, enumerated by the simulated firmware.</summary>
internal sealed class PciGuest : IDisposable
{
    public PciGuest(GuestArchitecture architecture, Action<PciHostBridge> populate, int vcpus = 1, PciPlatform? platform = null)
    {
        Xen = new SimulatedHypervisor(new SimulationOptions { Architecture = architecture, VcpuCount = vcpus, ResponseTimeout = TimeSpan.FromSeconds(20) });
        Server = new IoreqServer(Xen, new IoreqServerOptions { Domain = Xen.Domain });
        Platform = platform ?? (architecture == GuestArchitecture.X86 ? new X86Platform() : new Arm64Platform());
        Bridge = new PciHostBridge(Server, Platform);
        populate(Bridge);
        Server.Start();
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

    /// <summary>A BAR access as a driver makes it: port I/O on x86, MMIO (aperture included) otherwise.</summary>
    public ulong Read(AssignedBar bar, ulong offset, int size, SimulatedVcpu? cpu = null)
    {
        cpu ??= Cpu;
        return bar.Kind == PciBarKind.Io && Platform.Architecture == GuestArchitecture.X86
            ? cpu.In((ushort)(bar.CpuAddress + offset), size)
            : cpu.ReadMmio(bar.CpuAddress + offset, size);
    }

    public void Write(AssignedBar bar, ulong offset, int size, ulong value)
    {
        if (bar.Kind == PciBarKind.Io && Platform.Architecture == GuestArchitecture.X86)
        {
            Cpu.Out((ushort)(bar.CpuAddress + offset), size, (uint)value);
        }
        else
        {
            Cpu.WriteMmio(bar.CpuAddress + offset, size, value);
        }
    }

    public uint Config(PciSbdf address, int register, int size)
    {
        if (Platform is Arm64Platform arm)
        {
            return (uint)Cpu.ReadMmio(arm.EcamBase + ((ulong)address.Device << 15) + ((ulong)address.Function << 12) + (ulong)register, size);
        }

        Cpu.Out(0xCF8, 4, 0x8000_0000u | ((uint)address.Bdf << 8) | ((uint)register & 0xFC));
        return Cpu.In((ushort)(0xCFC + (register & 3)), size);
    }

    public void Config(PciSbdf address, int register, int size, uint value)
    {
        if (Platform is Arm64Platform arm)
        {
            Cpu.WriteMmio(arm.EcamBase + ((ulong)address.Device << 15) + ((ulong)address.Function << 12) + (ulong)register, size, value);
            return;
        }

        Cpu.Out(0xCF8, 4, 0x8000_0000u | ((uint)address.Bdf << 8) | ((uint)register & 0xFC));
        Cpu.Out((ushort)(0xCFC + (register & 3)), size, value);
    }

    /// <summary>The config-space offset of a capability, walking the list as a driver does.</summary>
    public int FindCapability(PciSbdf address, byte id)
    {
        int at = (int)Config(address, PciConfigRegisters.CapabilitiesPointer, 1);
        for (int hops = 0; at != 0 && hops < 48; hops++)
        {
            if (Config(address, at, 1) == id)
            {
                return at;
            }

            at = (int)Config(address, at + 1, 1);
        }

        return 0;
    }

    public void Dispose()
    {
        Server.Dispose();
        Xen.Dispose();
    }
}
