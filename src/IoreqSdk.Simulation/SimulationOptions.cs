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

    private ulong? _virtioMmioBase;
    private uint? _virtioMmioLine;

    /// <summary>
    /// Where <see cref="Virtio.SimulatedVirtioGuest"/> puts its virtio-mmio device. Unless set, where the guest would
    /// have it: on Arm64, Xen's first slot (<c>GUEST_VIRTIO_MMIO_BASE</c>, 0x0200_0000, where libxl places the first
    /// virtio-mmio device); on x86, which has no toolstack convention (Linux reads <c>virtio_mmio.device=</c> from
    /// its command line), 0xFEB0_0000, below the IO-APIC, where QEMU's microvm puts its first.
    /// </summary>
    public ulong VirtioMmioBase
    {
        get => _virtioMmioBase ?? (Architecture == GuestArchitecture.Arm64 ? IoreqSdk.Virtio.Mmio.VirtioMmioTransport.Arm64WindowBase : 0xFEB0_0000);
        set => _virtioMmioBase = value;
    }

    /// <summary>
    /// The interrupt line of that device, as the platform numbers lines. Unless set: on Arm64 Xen's first virtio-mmio
    /// SPI (<c>GUEST_VIRTIO_MMIO_SPI_FIRST</c>, 33); on x86 ISA IRQ 5 (free on Xen's HVM guests: no LPT2).
    /// </summary>
    public uint VirtioMmioLine
    {
        get => _virtioMmioLine ?? (Architecture == GuestArchitecture.Arm64 ? IoreqSdk.Virtio.Mmio.VirtioMmioTransport.Arm64FirstSpi : 5u);
        set => _virtioMmioLine = value;
    }

    /// <summary>Guest RAM's size in bytes (a multiple of 4 KiB).</summary>
    public ulong RamSize { get; set; } = 16 << 20;

    /// <summary>How long a vCPU waits for a response before the simulation reports it blocked (a test failure, not a hang).</summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The seed of the garbage Arm64 (Xen 4.17) leaves above the access size in write data and initial read data.</summary>
    public int GarbageSeed { get; set; } = 4_17;
}
