using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Platforms;

/// <summary>
/// A guest machine as the device model serves it: every answer that differs between architectures (or between two
/// machines of one architecture) comes from here, and nothing else in the SDK asks which architecture it runs on.
/// The server asks it for its buffered-ring mode and whether the guest has port I/O; platform devices get their
/// interrupt lines from it; <see cref="PciPlatform"/> adds what a PCI host bridge needs. Subclass it (or
/// <see cref="PciPlatform"/>, <see cref="EcamPlatform"/>) to describe another machine; the SDK's own are
/// <see cref="X86Platform"/> and <see cref="Arm64Platform"/>.
/// </summary>
public abstract class GuestPlatform
{
    /// <summary>Creates the platform.</summary>
    protected GuestPlatform()
    {
    }

    /// <summary>
    /// Whose guests the platform describes: the hypervisor's architecture must be this one (the one question asked of
    /// it, when a server or a bridge is built).
    /// </summary>
    public abstract GuestArchitecture Architecture { get; }

    /// <summary>The buffered-ring mode a server uses unless its options choose one.</summary>
    public abstract BufferedIoreqMode BufferedMode { get; }

    /// <summary>Whether the hypervisor forwards port I/O (x86 <c>in</c>/<c>out</c>); without it regions of port kind map nowhere.</summary>
    public abstract bool HasPortIo { get; }

    /// <summary>
    /// Whether Xen's toolstack reserves a virtio-mmio window and its interrupt lines for this platform's guests (Arm64:
    /// GUEST_VIRTIO_MMIO_BASE and SPIs 33 to 43, where libxl puts its virtio disks); none by default.
    /// </summary>
    public virtual bool HasVirtioMmioWindow => false;

    /// <summary>
    /// A platform device's interrupt line, numbered as this platform numbers them (x86: an ISA IRQ; Arm64: an SPI).
    /// </summary>
    /// <param name="hypervisor">The hypervisor.</param>
    /// <param name="domain">The guest.</param>
    /// <param name="line">The line's number on this platform.</param>
    /// <returns>The line.</returns>
    public abstract InterruptLine CreateInterruptLine(IHypervisor hypervisor, ushort domain, uint line);

    /// <summary>
    /// Checks rules that involve several properties (each property checks its own when it is set). Servers and
    /// bridges call it when they are built, so a bad layout fails there, not at the guest's first access.
    /// </summary>
    /// <exception cref="System.ArgumentException">The layout is inconsistent; <see cref="System.ArgumentException.ParamName"/> names the property.</exception>
    public virtual void Validate()
    {
    }

    /// <summary>The SDK's platform for a hypervisor's guests, with Xen's default layout.</summary>
    /// <param name="architecture">The hypervisor's architecture.</param>
    /// <returns><see cref="X86Platform"/> or <see cref="Arm64Platform"/>.</returns>
    public static PciPlatform For(GuestArchitecture architecture) => architecture switch
    {
        GuestArchitecture.X86 => new X86Platform(),
        GuestArchitecture.Arm64 => new Arm64Platform(),
        _ => throw new System.ArgumentOutOfRangeException(nameof(architecture), architecture, "The SDK has platforms for x86 and Arm64 guests; describe another machine with a GuestPlatform subclass."),
    };
}
