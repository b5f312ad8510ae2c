using System.IO;
using IoreqSdk.Abi;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Virtio.Mmio;

namespace Demu;

/// <summary>The device a run emulates.</summary>
internal enum DeviceKind
{
    /// <summary>QEMU's educational device (<see cref="EduDevice"/>).</summary>
    Edu,

    /// <summary>A PCI 16550A UART (<see cref="PciSerialDevice"/>).</summary>
    Serial,

    /// <summary>virtio-rng over virtio-mmio (<see cref="IoreqSdk.Devices.Virtio.Rng.VirtioRng"/>): a platform device, no bridge.</summary>
    VirtioRng,
}

/// <summary>What the command line asked for, validated.</summary>
internal sealed record DemuSettings
{
    public DeviceKind Device { get; init; } = DeviceKind.Edu;

    public GuestArchitecture Architecture { get; init; } = GuestArchitecture.X86;

    /// <summary>The guest's domain id on real Xen; null for the built-in simulated guest.</summary>
    public ushort? Domain { get; init; }

    /// <summary>Whether a real-Xen run restricts its Xen handles to <see cref="Domain"/> once the server is up.</summary>
    public bool Restrict { get; init; } = true;

    public PciSbdf Address { get; init; } = new(0, 0, 5, 0);

    /// <summary>The Arm64 host bridge's layout (Xen's guest layout unless overridden).</summary>
    public Arm64Platform Arm64 { get; init; } = new();

    /// <summary>How many address bits edu's DMA engine drives.</summary>
    public int EduDmaAddressBits { get; init; } = EduDevice.DefaultDmaAddressBits;

    /// <summary>Where the serial device's output goes; null for standard output.</summary>
    public string? SerialOutput { get; init; }

    public bool Verbose { get; init; }

    public PciPlatform Platform => Architecture == GuestArchitecture.Arm64 ? Arm64 : new X86Platform();

    /// <summary>
    /// Where a virtio-mmio device goes: on Arm64 Xen's first slot (libxl's, 0x02000000 and SPI 33); on x86, which has
    /// no toolstack convention, 0xFEB00000 and ISA IRQ 5, for the guest's <c>virtio_mmio.device=</c> parameter.
    /// </summary>
    public ulong VirtioMmioBase => Architecture == GuestArchitecture.Arm64 ? VirtioMmioTransport.Arm64Address(0) : 0xFEB0_0000;

    /// <summary>The virtio-mmio device's interrupt line, as the platform numbers lines.</summary>
    public uint VirtioMmioLine => Architecture == GuestArchitecture.Arm64 ? VirtioMmioTransport.Arm64Spi(0) : 5;

    public TextWriter Out { get; init; } = TextWriter.Null;

    public TextWriter Error { get; init; } = TextWriter.Null;
}
