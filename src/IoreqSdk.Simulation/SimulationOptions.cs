using System;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Simulation;

/// <summary>The simulated guest: its architecture, vCPUs and RAM.</summary>
public sealed class SimulationOptions
{
    /// <summary>x86 HVM or Arm64 rules.</summary>
    public GuestArchitecture Architecture { get; set; } = GuestArchitecture.X86;

    /// <summary>The guest's domain id.</summary>
    public ushort Domain { get; set; } = 1;

    /// <summary>vCPUs (ioreq slots), 1 to 128.</summary>
    public int VcpuCount { get; set; } = 1;

    private ulong? _ramBase;

    /// <summary>
    /// Guest RAM's first address. Unless set, where Xen puts it: 0 for an x86 HVM guest, <c>GUEST_RAM0_BASE</c>
    /// (0x4000_0000) for an Arm64 guest, as the real Arm64 run showed (a DMA engine narrower than 31 bits reaches no
    /// RAM there).
    /// </summary>
    public ulong RamBase
    {
        get => _ramBase ?? (Architecture == GuestArchitecture.Arm64 ? Arm64RamBase : 0);
        set => _ramBase = value;
    }

    /// <summary><c>GUEST_RAM0_BASE</c> of Xen's Arm guest layout (<c>xen/include/public/arch-arm.h</c>).</summary>
    public const ulong Arm64RamBase = 0x4000_0000;

    /// <summary>Guest RAM's size in bytes (a multiple of 4 KiB).</summary>
    public ulong RamSize { get; set; } = 16 << 20;

    /// <summary>How long a vCPU waits for a response before the simulation reports it blocked (a test failure, not a hang).</summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The seed of the garbage Arm64 (Xen 4.17) leaves above the access size in write data and initial read data.</summary>
    public int GarbageSeed { get; set; } = 4_17;
}
