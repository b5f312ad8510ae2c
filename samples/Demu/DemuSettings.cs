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

    /// <summary>virtio-rng (<see cref="IoreqSdk.Devices.Virtio.Rng.VirtioRng"/>), over virtio-mmio or virtio-pci.</summary>
    VirtioRng,

    /// <summary>virtio-blk over a raw image (<see cref="IoreqSdk.Devices.Virtio.Blk.VirtioBlkDevice"/>), over virtio-mmio or virtio-pci.</summary>
    VirtioBlk,

    /// <summary>virtio-console, one port on standard input and output (<see cref="IoreqSdk.Devices.Virtio.Console.VirtioConsoleDevice"/>).</summary>
    VirtioConsole,
}

/// <summary>How a virtio device reaches the guest.</summary>
internal enum VirtioTransport
{
    /// <summary>virtio-mmio: a platform device at a fixed address with an interrupt line of the platform.</summary>
    Mmio,

    /// <summary>virtio-pci (modern): a function behind the host bridge, MSI-X where the platform delivers messages.</summary>
    Pci,
}

/// <summary>What the command line asked for, validated.</summary>
internal sealed record DemuSettings
{
    public DeviceKind Device { get; init; } = DeviceKind.Edu;

    /// <summary>Whether <see cref="Device"/> is a virtio device (served over <see cref="Transport"/>).</summary>
    public bool IsVirtio => Device is DeviceKind.VirtioRng or DeviceKind.VirtioBlk or DeviceKind.VirtioConsole;

    /// <summary>The virtio transport: virtio-mmio on Arm64 (what Xen's toolstack creates), virtio-pci on x86 unless chosen.</summary>
    public VirtioTransport Transport { get; init; }

    /// <summary>virtio-blk: the raw image; null on the simulated guest for a scratch image demu creates and deletes.</summary>
    public string? Disk { get; init; }

    /// <summary>virtio-blk: serve the image read-only (VIRTIO_BLK_F_RO).</summary>
    public bool ReadOnly { get; init; }

    public GuestArchitecture Architecture { get; init; } = GuestArchitecture.X86;

    /// <summary>The guest's domain id on real Xen; null for the built-in simulated guest.</summary>
    public ushort? Domain { get; init; }

    /// <summary>How long the event loop spins after a request before it sleeps (IoreqServerOptions.BusyPoll); zero: never.</summary>
    public System.TimeSpan BusyPoll { get; init; }

    /// <summary>How many threads serve the guest's vCPUs (IoreqServerOptions.LoopThreads); one by default.</summary>
    public int LoopThreads { get; init; } = 1;

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
    /// Where a virtio-mmio device goes: on Arm64 Xen's first slot (libxl's, 0x02000000 and SPI 33) unless chosen; on x86,
    /// which has no toolstack convention, 0xFEB00000 and ISA IRQ 5, for the guest's <c>virtio_mmio.device=</c> parameter.
    /// </summary>
    public ulong VirtioMmioBase { get; init; }

    /// <summary>The virtio-mmio device's interrupt line, as the platform numbers lines (an SPI on Arm64, an ISA IRQ on x86).</summary>
    public uint VirtioMmioLine { get; init; }

    /// <summary>The default virtio-mmio slot of an architecture.</summary>
    public static (ulong Base, uint Line) DefaultVirtioMmio(GuestArchitecture architecture) =>
        architecture == GuestArchitecture.Arm64 ? (VirtioMmioTransport.Arm64Address(0), VirtioMmioTransport.Arm64Spi(0)) : (0xFEB0_0000, 5);

    /// <summary>How demu names the virtio device and its transport.</summary>
    public string VirtioName => Device switch
    {
        DeviceKind.VirtioBlk => "virtio-blk",
        DeviceKind.VirtioConsole => "virtio-console",
        _ => "virtio-rng",
    };

    public TextWriter Out { get; init; } = TextWriter.Null;

    public TextWriter Error { get; init; } = TextWriter.Null;
}
