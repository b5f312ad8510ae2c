using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;

namespace IoreqSdk.Simulation;

/// <summary>
/// PCI as a guest driver reaches it through one vCPU, the way its platform says: configuration space through
/// CF8/CFC (which the hypervisor decodes) or the host bridge's ECAM window, and BARs through port I/O or MMIO (an I/O
/// BAR through the PIO aperture where the platform has one).
/// </summary>
public sealed class GuestPci
{
    private readonly SimulatedVcpu _cpu;
    private readonly EcamPciConfig? _ecam;
    private readonly PciIoSpace _ioSpace;

    /// <summary>Creates the accessor.</summary>
    /// <param name="cpu">The vCPU making the accesses.</param>
    /// <param name="platform">The host bridge's platform (x86, or Arm64 with its ECAM base).</param>
    public GuestPci(SimulatedVcpu cpu, PciPlatform platform)
    {
        _cpu = cpu ?? throw new ArgumentNullException(nameof(cpu));
        Platform = platform ?? throw new ArgumentNullException(nameof(platform));
        _ecam = platform.ConfigAccess as EcamPciConfig;
        _ioSpace = platform.IoSpace;
    }

    /// <summary>The platform.</summary>
    public PciPlatform Platform { get; }

    /// <summary>Reads configuration space.</summary>
    /// <param name="function">The function.</param>
    /// <param name="register">The offset.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <returns>The value (all-ones where no function answers).</returns>
    public uint ReadConfig(PciSbdf function, int register, int size)
    {
        if (_ecam is not null)
        {
            return (uint)_cpu.ReadMmio(_ecam.AddressOf(function, register), size);
        }

        _cpu.Out(0xCF8, 4, Cf8(function, register));
        return _cpu.In((ushort)(0xCFC + (register & 3)), size);
    }

    /// <summary>Writes configuration space.</summary>
    /// <param name="function">The function.</param>
    /// <param name="register">The offset.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <param name="value">The value.</param>
    public void WriteConfig(PciSbdf function, int register, int size, uint value)
    {
        if (_ecam is not null)
        {
            _cpu.WriteMmio(_ecam.AddressOf(function, register), size, value);
            return;
        }

        _cpu.Out(0xCF8, 4, Cf8(function, register));
        _cpu.Out((ushort)(0xCFC + (register & 3)), size, value);
    }

    /// <summary>Finds a capability by walking the list from the capabilities pointer, as a driver does.</summary>
    /// <param name="function">The function.</param>
    /// <param name="id">The capability id.</param>
    /// <returns>Its offset, or 0 when the list has none.</returns>
    public int FindCapability(PciSbdf function, byte id)
    {
        int at = (int)ReadConfig(function, PciConfigRegisters.CapabilitiesPointer, 1) & 0xFC;
        for (int hops = 0; at != 0 && hops < 48; hops++)
        {
            if (ReadConfig(function, at, 1) == id)
            {
                return at;
            }

            at = (int)ReadConfig(function, at + 1, 1) & 0xFC;
        }

        return 0;
    }

    /// <summary>Reads a BAR.</summary>
    /// <param name="bar">The BAR as firmware assigned it.</param>
    /// <param name="offset">The offset in the BAR.</param>
    /// <param name="size">The width.</param>
    /// <returns>The value.</returns>
    public ulong ReadBar(AssignedBar bar, ulong offset, int size) =>
        IsPort(bar) ? _cpu.In((ushort)(bar.CpuAddress + offset), size) : _cpu.ReadMmio(bar.CpuAddress + offset, size);

    /// <summary>Writes a BAR.</summary>
    /// <param name="bar">The BAR as firmware assigned it.</param>
    /// <param name="offset">The offset in the BAR.</param>
    /// <param name="size">The width.</param>
    /// <param name="value">The value.</param>
    public void WriteBar(AssignedBar bar, ulong offset, int size, ulong value)
    {
        if (IsPort(bar))
        {
            _cpu.Out((ushort)(bar.CpuAddress + offset), size, (uint)value);
        }
        else
        {
            _cpu.WriteMmio(bar.CpuAddress + offset, size, value);
        }
    }

    private static uint Cf8(PciSbdf function, int register) => 0x8000_0000u | ((uint)function.Bdf << 8) | ((uint)register & 0xFC);

    private bool IsPort(AssignedBar bar) => bar is null ? throw new ArgumentNullException(nameof(bar)) : bar.Kind == PciBarKind.Io && _ioSpace.Space == RegionKind.Port;
}
