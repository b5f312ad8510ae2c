using System;
using System.Globalization;
using System.Text;
using IoreqSdk.Devices;
using IoreqSdk.Memory;
using IoreqSdk.Platforms;

namespace IoreqSdk.Virtio.Mmio;

/// <summary>
/// The virtio-mmio transport, version 2 (virtio 1.2 §4.2.2): one <see cref="VirtioDevice"/> behind a 0x200-byte
/// register block at a fixed guest-physical address, with one interrupt line — a platform device, as Xen's toolstack
/// and Linux's <c>virtio_mmio</c> driver know it.
/// </summary>
/// <remarks>
/// <para>
/// <b>Placing it.</b> On Arm64, Xen 4.17's libxl gives each virtio-mmio device (each <c>disk = [ '...,
/// specification=virtio' ]</c> line, in order) the next 0x200 bytes (<c>VIRTIO_MMIO_DEV_SIZE</c>, in
/// <c>tools/libs/light/libxl_arm.c</c>) from <c>GUEST_VIRTIO_MMIO_BASE</c> = 0x0200_0000 (a window of
/// <c>GUEST_VIRTIO_MMIO_SIZE</c> = 1 MiB) and the next SPI from <c>GUEST_VIRTIO_MMIO_SPI_FIRST</c> = 33 to
/// <c>GUEST_VIRTIO_MMIO_SPI_LAST</c> = 43 (<c>xen/include/public/arch-arm.h</c>), and writes a <c>virtio,mmio</c>
/// node for it into the guest's device tree (<see cref="DescribeDeviceTreeNodeAt(ulong, uint, uint)"/> writes the same
/// node). <see cref="Arm64Address(int)"/> and <see cref="Arm64Spi(int)"/> give the n-th slot;
/// <c>new VirtioMmioTransport(device, VirtioMmioTransport.Arm64Address(0), server.CreateInterruptLine(VirtioMmioTransport.Arm64Spi(0)))</c>
/// takes the first. On x86 there is no toolstack convention: Linux finds the device from its command line
/// (<c>virtio_mmio.device=512@0xfeb00000:5</c>), so any free MMIO hole and ISA IRQ serve.
/// </para>
/// <para>
/// <b>Interrupts</b> are level-triggered: the line is asserted while InterruptStatus is non-zero and deasserted when
/// the driver's InterruptACK clears its last bit. (Xen 4.17's vGIC injects an SPI when the level goes to 1, and
/// libxl describes the line as rising-edge: one injection per 0 → 1, which Linux's handler — read the status,
/// acknowledge it, then walk every queue — never misses an event by.)
/// </para>
/// <para>
/// <b>Doorbells do not hold the vCPU.</b> A QueueNotify write is answered at once; the device processes the queue in
/// posted work on the event loop, after the answer (coalesced, allocation-free: see
/// <see cref="DeferredNotifyPasses"/>). The transport also lets the device continue a long queue in a later pass
/// (<see cref="IVirtioQueueScheduler"/>).
/// </para>
/// <para>
/// <b>The guest is hostile.</b> Control registers (below 0x100) take aligned 32-bit accesses only, as the
/// specification requires of drivers: any other access reads all-ones or is dropped, and is counted in
/// <see cref="RefusedAccesses"/>; 8-byte accesses are refused by the SDK's width check before they arrive. Reads of
/// write-only registers and of reserved offsets return 0, writes to read-only and reserved ones are ignored; queue
/// registers of a queue that does not exist, or is ready, change nothing; a status write that skips a step is refused
/// by the device; configuration accesses past the device's config space read 0 and are dropped.
/// </para>
/// </remarks>
public sealed partial class VirtioMmioTransport : DeviceModel, IVirtioTransport, IVirtioQueueScheduler
{
    /// <summary>The size of the register block: <c>VIRTIO_MMIO_DEV_SIZE</c> of libxl (0x100 of registers, 0x100 of device configuration).</summary>
    public const ulong Size = 0x200;

    /// <summary>The largest device configuration space the block has room for.</summary>
    public const int MaxConfigSize = (int)Size - VirtioMmioRegisters.Config;

    /// <summary><c>GUEST_VIRTIO_MMIO_BASE</c> (Xen 4.17, <c>xen/include/public/arch-arm.h</c>): where libxl places the first virtio-mmio device of an Arm guest.</summary>
    public const ulong Arm64WindowBase = 0x0200_0000;

    /// <summary><c>GUEST_VIRTIO_MMIO_SIZE</c>: the Arm guest's window for virtio-mmio devices (1 MiB, 2048 slots of <see cref="Size"/>).</summary>
    public const ulong Arm64WindowSize = 0x10_0000;

    /// <summary><c>GUEST_VIRTIO_MMIO_SPI_FIRST</c>: the SPI libxl gives the first virtio-mmio device.</summary>
    public const uint Arm64FirstSpi = 33;

    /// <summary><c>GUEST_VIRTIO_MMIO_SPI_LAST</c>: the last SPI of the range (11 devices in all).</summary>
    public const uint Arm64LastSpi = 43;

    /// <summary>The vendor id this transport reports unless told otherwise: "ISDK" in little-endian ASCII.</summary>
    public const uint DefaultVendorId = 0x4B44_5349;

    private readonly VirtioDevice _device;
    private readonly InterruptLine _interrupt;
    private readonly DeferredQueueNotifications _notifications;
    private readonly uint _vendorId;
    private uint _deviceFeaturesSelect;
    private uint _driverFeaturesSelect;
    private uint _queueSelect;
    private uint _shmSelect;
    private uint _interruptStatus;

    /// <summary>Puts <paramref name="device"/> behind a register block at <paramref name="address"/>.</summary>
    /// <param name="device">The virtio device (not attached to another transport).</param>
    /// <param name="address">The guest-physical base of the register block (a multiple of 0x200).</param>
    /// <param name="interrupt">The device's line, from the platform (<c>server.CreateInterruptLine(spi)</c>).</param>
    /// <param name="vendorId">What VendorID reads.</param>
    /// <exception cref="ArgumentException">The device is attached already, or its config space exceeds <see cref="MaxConfigSize"/>.</exception>
    public VirtioMmioTransport(VirtioDevice device, ulong address, InterruptLine interrupt, uint vendorId = DefaultVendorId)
        : base("virtio-mmio")
    {
        if (device is null)
        {
            throw new ArgumentNullException(nameof(device));
        }

        if (device.IsAttached)
        {
            throw new ArgumentException("The virtio device is attached to a transport already.", nameof(device));
        }

        if (device.ConfigSize > MaxConfigSize)
        {
            throw new ArgumentException(
                FormattableString.Invariant($"The device's config space ({device.ConfigSize} bytes) does not fit the {MaxConfigSize} bytes of a virtio-mmio block."),
                nameof(device));
        }

        if (address % Size != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(address), FormattableString.Invariant($"A virtio-mmio block starts on a 0x{Size:x}-byte boundary (0x{address:x} does not)."));
        }

        _device = device;
        _interrupt = interrupt ?? throw new ArgumentNullException(nameof(interrupt));
        _vendorId = vendorId;
        _notifications = new DeferredQueueNotifications(device);
        Registers = AddMmioRegion(Size, address, AccessWidths.Byte | AccessWidths.Word | AccessWidths.DWord);
        device.Attach(this);
    }

    /// <inheritdoc/>
    protected override void OnAttached()
    {
        // A device that runs its own I/O off the loop or takes input from another thread needs the server's context,
        // not only the guest memory the transport gives (IDeviceContextConsumer); before the guest can reach it.
        if (_device is IDeviceContextConsumer consumer)
        {
            consumer.AttachContext(Context);
        }
    }

    /// <summary>The virtio device behind the transport.</summary>
    public VirtioDevice Device => _device;

    /// <summary>The register block.</summary>
    public DeviceRegion Registers { get; }

    /// <summary>The guest-physical base of the register block.</summary>
    public ulong Address => Registers.InitialAddress!.Value;

    /// <summary>The device's interrupt line.</summary>
    public InterruptLine Interrupt => _interrupt;

    /// <summary>InterruptStatus as the driver would read it.</summary>
    public uint InterruptStatus => _interruptStatus;

    /// <summary>Control-register accesses refused for their width or alignment (the specification allows aligned 32-bit ones only).</summary>
    public long RefusedAccesses { get; private set; }

    /// <summary>QueueNotify writes naming a queue the device does not have (ignored).</summary>
    public long IgnoredNotifies => _notifications.IgnoredNotifies;

    /// <summary>Notification passes that ran in posted work, after the guest's write was answered.</summary>
    public long DeferredNotifyPasses => _notifications.PostedPasses;

    /// <summary>Notification passes that ran inside the guest's write because the loop refused the post (its queue was full).</summary>
    public long InlineNotifyPasses => _notifications.InlinePasses;

    /// <summary>Guest memory, as the device reaches it (the server's, on the event loop).</summary>
    public IGuestMemory Memory => Context.Memory;

    /// <summary>The guest-physical base of the n-th virtio-mmio slot libxl hands out on Arm64.</summary>
    /// <param name="index">0 for the first device.</param>
    /// <returns><see cref="Arm64WindowBase"/> + <paramref name="index"/> × <see cref="Size"/>.</returns>
    public static ulong Arm64Address(int index)
    {
        if (index < 0 || (ulong)index >= Arm64WindowSize / Size)
        {
            throw new ArgumentOutOfRangeException(nameof(index), FormattableString.Invariant($"Xen's virtio-mmio window holds {Arm64WindowSize / Size} devices."));
        }

        return Arm64WindowBase + ((ulong)index * Size);
    }

    /// <summary>The SPI libxl gives the n-th virtio-mmio device on Arm64.</summary>
    /// <param name="index">0 for the first device.</param>
    /// <returns><see cref="Arm64FirstSpi"/> + <paramref name="index"/> (at most <see cref="Arm64LastSpi"/>).</returns>
    public static uint Arm64Spi(int index)
    {
        if (index < 0 || index > Arm64LastSpi - Arm64FirstSpi)
        {
            throw new ArgumentOutOfRangeException(nameof(index), FormattableString.Invariant($"Xen reserves SPIs {Arm64FirstSpi} to {Arm64LastSpi} for virtio-mmio: {Arm64LastSpi - Arm64FirstSpi + 1} devices."));
        }

        return Arm64FirstSpi + (uint)index;
    }

    /// <summary>
    /// The device-tree node that describes a virtio-mmio device to an Arm guest, as libxl writes it
    /// (<c>make_virtio_mmio_node</c>): compatible <c>virtio,mmio</c>, <c>reg</c> (two address and two size cells, the
    /// guest root's), <c>interrupts</c> (a GIC SPI, all CPUs, rising edge), <c>interrupt-parent</c>, <c>dma-coherent</c>.
    /// </summary>
    /// <param name="address">The register block's base.</param>
    /// <param name="spi">The device's SPI (32–1019).</param>
    /// <param name="interruptParent">The phandle of the guest's interrupt controller (libxl's vGIC, <c>GUEST_PHANDLE_GIC</c>, unless given).</param>
    /// <returns>The node in device-tree source syntax.</returns>
    public static string DescribeDeviceTreeNodeAt(ulong address, uint spi, uint interruptParent = Arm64Platform.GuestGicPhandle)
    {
        if (spi is < Arm64Platform.FirstSpi or > Arm64Platform.LastSpi)
        {
            throw new ArgumentOutOfRangeException(nameof(spi), FormattableString.Invariant($"SPI {spi}: GIC SPIs are {Arm64Platform.FirstSpi} to {Arm64Platform.LastSpi}."));
        }

        var node = new StringBuilder();
        node.Append(FormattableString.Invariant($"virtio@{address:x} {{\n"));
        node.Append("\tcompatible = \"virtio,mmio\";\n");
        node.Append(string.Format(CultureInfo.InvariantCulture, "\treg = <0x{0:x} 0x{1:x} 0x0 0x{2:x}>;\n", (uint)(address >> 32), (uint)address, Size));

        // The GIC's three cells: SPI (0), its number from 32, then the CPU mask (all: 0xf) above the trigger
        // (1: rising edge), as libxl's set_interrupt() builds them.
        node.Append(FormattableString.Invariant($"\tinterrupts = <0x0 0x{spi - Arm64Platform.FirstSpi:x} 0xf01>;\n"));
        node.Append(FormattableString.Invariant($"\tinterrupt-parent = <0x{interruptParent:x}>;\n"));
        node.Append("\tdma-coherent;\n");
        node.Append("};\n");
        return node.ToString();
    }

    /// <summary>This device's node (see <see cref="DescribeDeviceTreeNodeAt(ulong, uint, uint)"/>).</summary>
    /// <param name="spi">The SPI its <see cref="Interrupt"/> line raises.</param>
    /// <param name="interruptParent">The interrupt controller's phandle.</param>
    /// <returns>The node.</returns>
    public string DescribeDeviceTreeNode(uint spi, uint interruptParent = Arm64Platform.GuestGicPhandle) =>
        DescribeDeviceTreeNodeAt(Address, spi, interruptParent);

    /// <inheritdoc/>
    void IVirtioTransport.NotifyUsedBuffers(int queueIndex) => Raise(VirtioMmioRegisters.InterruptUsedBuffer);

    /// <inheritdoc/>
    void IVirtioTransport.NotifyConfigChange() => Raise(VirtioMmioRegisters.InterruptConfigChange);

    /// <inheritdoc/>
    bool IVirtioQueueScheduler.TryScheduleQueue(int queueIndex) => _notifications.TrySchedule(queueIndex, Context);

    /// <summary>Sets InterruptStatus bits; the line follows (asserting an asserted line changes nothing).</summary>
    private void Raise(uint bits)
    {
        _interruptStatus |= bits;
        _interrupt.Assert();
    }

    private void Acknowledge(uint bits)
    {
        uint before = _interruptStatus;
        _interruptStatus &= ~bits;
        if (_interruptStatus == 0)
        {
            _interrupt.Deassert();
        }
        else if (_interruptStatus != before)
        {
            // A cause raised after the driver read InterruptStatus and before this ACK (Linux's vm_interrupt acks what
            // it read) is still pending: lower and raise the line, so that an edge-triggered line — libxl's
            // device-tree node says rising edge, ISA IRQs are edges — gives the driver a new edge for it, instead of
            // staying high with no edge for ever. A level-triggered line is simply asserted again.
            _interrupt.Deassert();
            _interrupt.Assert();
        }
    }

    /// <summary>Status 0: the device resets, and so does everything the transport holds for it.</summary>
    private void Reset()
    {
        _device.WriteStatus(0);
        _notifications.Clear();
        _deviceFeaturesSelect = 0;
        _driverFeaturesSelect = 0;
        _queueSelect = 0;
        _shmSelect = 0;
        Acknowledge(uint.MaxValue);
    }
}
