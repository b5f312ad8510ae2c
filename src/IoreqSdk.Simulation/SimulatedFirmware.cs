using System;
using System.Collections.Generic;
using System.Linq;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;

namespace IoreqSdk.Simulation;

/// <summary>A BAR the firmware found, sized and assigned.</summary>
/// <param name="Index">The BAR number (6 for the expansion ROM).</param>
/// <param name="Kind">Its kind.</param>
/// <param name="BusAddress">What was programmed into it (an I/O-space address for I/O BARs).</param>
/// <param name="CpuAddress">Where the CPU reaches it: the port on x86, the PIO aperture's MMIO address on Arm64, else the bus address.</param>
/// <param name="Size">Its size.</param>
/// <param name="Prefetchable">Whether it is prefetchable.</param>
public sealed record AssignedBar(int Index, PciBarKind Kind, ulong BusAddress, ulong CpuAddress, ulong Size, bool Prefetchable);

/// <summary>A function the firmware found.</summary>
/// <param name="Address">Where it sits.</param>
/// <param name="VendorId">Its vendor.</param>
/// <param name="DeviceId">Its device id.</param>
/// <param name="ClassCode">Its class code (0xBBSSPP).</param>
/// <param name="Bars">Its BARs, as assigned.</param>
public sealed record EnumeratedFunction(PciSbdf Address, ushort VendorId, ushort DeviceId, uint ClassCode, IReadOnlyList<AssignedBar> Bars);

/// <summary>
/// Guest firmware's PCI bring-up, as SeaBIOS or Linux does it, through a vCPU: scan the bus (CF8/CFC on x86, the
/// bridge's ECAM window on Arm64), size every BAR kind, assign addresses from the platform's windows (largest first,
/// naturally aligned), then enable I/O and memory decode and bus mastering.
/// </summary>
public static class SimulatedFirmware
{
    /// <summary>Enumerates and configures bus 0 of a host bridge.</summary>
    /// <param name="cpu">The vCPU that makes the accesses.</param>
    /// <param name="platform">The platform of the bridge (its windows, and on Arm64 its ECAM base).</param>
    /// <param name="segment">The bridge's segment (x86 reaches segment 0 only).</param>
    /// <returns>The functions found, with their assigned BARs.</returns>
    public static IReadOnlyList<EnumeratedFunction> EnumeratePci(SimulatedVcpu cpu, PciPlatform platform, ushort segment = 0)
    {
        if (cpu is null)
        {
            throw new ArgumentNullException(nameof(cpu));
        }

        if (platform is null)
        {
            throw new ArgumentNullException(nameof(platform));
        }

        var config = new GuestPci(cpu, platform);
        var found = new List<(PciSbdf Address, List<(int Index, PciBarKind Kind, ulong Size, bool Prefetchable)> Bars)>();
        for (int device = 0; device < 32; device++)
        {
            for (int function = 0; function < 8; function++)
            {
                var address = new PciSbdf(segment, 0, device, function);
                if (config.ReadConfig(address, PciConfigRegisters.VendorId, 2) == 0xFFFF)
                {
                    if (function == 0)
                    {
                        break;
                    }

                    continue;
                }

                found.Add((address, SizeBars(config, address)));
                if (function == 0 && (config.ReadConfig(address, PciConfigRegisters.HeaderType, 1) & 0x80) == 0)
                {
                    break;
                }
            }
        }

        // Assign largest first so natural alignment wastes little (as SeaBIOS does).
        var allocators = new Dictionary<string, Allocator>
        {
            ["io"] = new(platform.IoWindow),
            ["mem"] = new(platform.MemoryWindow),
            ["pref"] = new(platform.PrefetchableWindow),
        };
        var assigned = found.ToDictionary(f => f.Address, _ => new List<AssignedBar>());
        foreach (var (address, bar) in found.SelectMany(f => f.Bars.Select(b => (f.Address, b))).OrderByDescending(x => x.b.Size))
        {
            string pool = bar.Kind switch
            {
                PciBarKind.Io => "io",
                PciBarKind.Memory64 when bar.Prefetchable => "pref",
                _ => "mem",
            };
            ulong at = allocators[pool].Take(bar.Size);
            Program(config, address, bar.Index, bar.Kind, at);
            ulong cpuAddress = bar.Kind == PciBarKind.Io ? platform.IoSpace.GuestAddress(at) : at;
            assigned[address].Add(new AssignedBar(bar.Index, bar.Kind, at, cpuAddress, bar.Size, bar.Prefetchable));
        }

        var result = new List<EnumeratedFunction>();
        foreach (var (address, bars) in found)
        {
            bool io = bars.Any(b => b.Kind == PciBarKind.Io);
            uint command = config.ReadConfig(address, PciConfigRegisters.Command, 2);
            command |= PciConfigRegisters.CommandMemory | PciConfigRegisters.CommandBusMaster | (io ? PciConfigRegisters.CommandIo : 0u);
            config.WriteConfig(address, PciConfigRegisters.Command, 2, command);
            uint id = config.ReadConfig(address, 0, 4);
            uint classCode = config.ReadConfig(address, PciConfigRegisters.RevisionId, 4) >> 8;
            result.Add(new EnumeratedFunction(address, (ushort)id, (ushort)(id >> 16), classCode, assigned[address].OrderBy(b => b.Index).ToList()));
        }

        return result;
    }

    private static List<(int Index, PciBarKind Kind, ulong Size, bool Prefetchable)> SizeBars(GuestPci config, PciSbdf address)
    {
        var bars = new List<(int, PciBarKind, ulong, bool)>();
        for (int index = 0; index < 6; index++)
        {
            int register = PciConfigRegisters.Bar0 + (4 * index);
            uint original = config.ReadConfig(address, register, 4);
            config.WriteConfig(address, register, 4, uint.MaxValue);
            uint probe = config.ReadConfig(address, register, 4);
            config.WriteConfig(address, register, 4, original);
            if (probe == 0)
            {
                continue;
            }

            if ((probe & 1) != 0)
            {
                bars.Add((index, PciBarKind.Io, (ulong)(~(probe & 0xFFFF_FFFC) + 1), false));
                continue;
            }

            bool prefetchable = (probe & 8) != 0;
            if (((probe >> 1) & 3) == 2)
            {
                uint highOriginal = config.ReadConfig(address, register + 4, 4);
                config.WriteConfig(address, register + 4, 4, uint.MaxValue);
                uint high = config.ReadConfig(address, register + 4, 4);
                config.WriteConfig(address, register + 4, 4, highOriginal);
                ulong mask = ((ulong)high << 32) | (probe & 0xFFFF_FFF0);
                bars.Add((index, PciBarKind.Memory64, ~mask + 1, prefetchable));
                index++;
                continue;
            }

            bars.Add((index, PciBarKind.Memory32, (ulong)(~(probe & 0xFFFF_FFF0) + 1), prefetchable));
        }

        uint rom = config.ReadConfig(address, PciConfigRegisters.ExpansionRom, 4);
        config.WriteConfig(address, PciConfigRegisters.ExpansionRom, 4, 0xFFFF_F800);
        uint romProbe = config.ReadConfig(address, PciConfigRegisters.ExpansionRom, 4);
        config.WriteConfig(address, PciConfigRegisters.ExpansionRom, 4, rom);
        if ((romProbe & 0xFFFF_F800) != 0)
        {
            bars.Add((6, PciBarKind.ExpansionRom, (ulong)(~(romProbe & 0xFFFF_F800) + 1), false));
        }

        return bars;
    }

    private static void Program(GuestPci config, PciSbdf address, int index, PciBarKind kind, ulong at)
    {
        switch (kind)
        {
            case PciBarKind.ExpansionRom:
                config.WriteConfig(address, PciConfigRegisters.ExpansionRom, 4, (uint)at | 1);
                break;
            case PciBarKind.Memory64:
                config.WriteConfig(address, PciConfigRegisters.Bar0 + (4 * index), 4, (uint)at);
                config.WriteConfig(address, PciConfigRegisters.Bar0 + (4 * index) + 4, 4, (uint)(at >> 32));
                break;
            default:
                config.WriteConfig(address, PciConfigRegisters.Bar0 + (4 * index), 4, (uint)at);
                break;
        }
    }

    /// <summary>A bump allocator over a window, aligning each allocation to its size.</summary>
    private sealed class Allocator
    {
        private readonly PciWindow _window;
        private ulong _next;

        public Allocator(PciWindow window)
        {
            _window = window;
            _next = window.Base;
        }

        public ulong Take(ulong size)
        {
            ulong at = (_next + size - 1) & ~(size - 1);
            if (!_window.Contains(at, size))
            {
                throw new InvalidOperationException($"The window {_window} has no room for a BAR of 0x{size:x} bytes.");
            }

            _next = at + size;
            return at;
        }
    }
}
