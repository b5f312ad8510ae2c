using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Server;

namespace IoreqSdk.Pci;

/// <summary>
/// The architecture-neutral centre of PCI: owns a segment and its functions, carries their configuration accesses
/// (Xen's <c>PCI_CONFIG</c> requests on x86, its own ECAM window on Arm64), maps their BARs into the dispatcher and
/// Xen (I/O BARs into port space on x86, into the PIO aperture on Arm64) and routes their interrupts through the
/// platform. Several bridges (separate segments) can serve one guest.
/// </summary>
public sealed class PciHostBridge : IHostBridge, IPciBus
{
    // The bridges built on each server, so a new one cannot take a segment or (on Arm64) addresses another one owns.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IoreqServer, List<PciHostBridge>> s_bridges = new();

    private readonly IoreqServer _server;
    private readonly Dictionary<PciSbdf, PciDevice> _functions = new();
    private readonly Arm64Platform? _arm;

    /// <summary>Creates a bridge serving through <paramref name="server"/>; add functions before the server starts.</summary>
    /// <param name="server">The ioreq server (not yet started).</param>
    /// <param name="platform">The architecture's PCI rules; must match the hypervisor's guests.</param>
    /// <param name="segment">The PCI segment.</param>
    public PciHostBridge(IoreqServer server, PciPlatform platform, ushort segment = 0)
    {
        _server = server ?? throw new ArgumentNullException(nameof(server));
        Platform = platform ?? throw new ArgumentNullException(nameof(platform));
        Segment = segment;
        if (platform.Architecture != server.Hypervisor.Architecture)
        {
            ThrowHelper.ThrowArgument(nameof(platform), $"A {platform.Architecture} platform cannot serve {server.Hypervisor.Architecture} guests.");
        }

        platform.Validate();
        if (platform is X86Platform && segment != 0)
        {
            // Xen 4.17 decodes an x86 HVM guest's configuration accesses from 0xCF8/0xCFC only, which reach segment 0.
            ThrowHelper.ThrowArgumentOutOfRange(nameof(segment), $"An x86 guest reaches PCI segment 0 only (Xen decodes 0xCF8/0xCFC); segment {segment} would never be seen.");
        }

        List<PciHostBridge> siblings = s_bridges.GetOrCreateValue(server);
        lock (siblings)
        {
            foreach (PciHostBridge other in siblings)
            {
                CheckApart(other, segment, platform);
            }
        }

        if (platform is Arm64Platform arm)
        {
            // Arm64: the bridge owns configuration space (ECAM) and the I/O window, and is itself function 00:00.0.
            _arm = arm;
            _server.AddDevice(new EcamWindow(this, arm));
            AddDevice(new HostBridgeFunction(), 0);
        }

        // Only a bridge that was built takes its segment and windows.
        lock (siblings)
        {
            siblings.Add(this);
        }
    }

    /// <inheritdoc/>
    public ushort Segment { get; }

    /// <inheritdoc/>
    public PciPlatform Platform { get; }

    /// <inheritdoc/>
    public IReadOnlyDictionary<PciSbdf, PciDevice> Functions => _functions;

    bool IPciBus.MessageInterruptsAvailable => Platform.SupportsMessageInterrupts;

    /// <inheritdoc/>
    public PciSbdf AddDevice(PciDevice device, int deviceNumber, int function = 0)
    {
        if (device is null)
        {
            throw new ArgumentNullException(nameof(device));
        }

        var sbdf = new PciSbdf(Segment, 0, deviceNumber, function);
        if (_functions.ContainsKey(sbdf))
        {
            ThrowHelper.ThrowInvalidOperation($"{sbdf} is taken.");
        }

        if (_arm is null && deviceNumber == 0 && function == 0 && Segment == 0)
        {
            ThrowHelper.ThrowInvalidOperation("0000:00:00.0 belongs to QEMU (ioreq server 0) on x86 guests; choose another slot.");
        }

        if (!Platform.SupportsMessageInterrupts && device.HasMessageInterrupts)
        {
            if (device.Identity.InterruptPin == 0)
            {
                ThrowHelper.ThrowInvalidOperation(
                    $"{device.Name} cannot interrupt a {Platform.Architecture} guest: Xen 4.17 offers no MSI injection on Arm, and the device has no INTx pin to fall back to. Give it an INTx pin (PciIdentity.InterruptPin).");
            }

            // The guest's driver falls back to INTx when it finds no MSI capability.
            device.HideMessageInterrupts();
        }

        device.AttachToBus(this, sbdf);
        _server.AddDevice(device);
        if (_arm is null)
        {
            _server.AddPciFunction(sbdf, device);
        }

        _functions.Add(sbdf, device);

        // Function 0 announces a multi-function device (header type bit 7) when any other function exists.
        if (_functions.TryGetValue(new PciSbdf(Segment, 0, deviceNumber, 0), out PciDevice? first))
        {
            bool multi = false;
            for (int f = 1; f < 8; f++)
            {
                multi |= _functions.ContainsKey(new PciSbdf(Segment, 0, deviceNumber, f));
            }

            first.SetMultiFunction(multi);
        }

        return sbdf;
    }

    /// <summary>
    /// The device-tree node a toolstack needs to describe this bridge to an Arm64 guest (compatible
    /// <c>pci-host-ecam-generic</c>, <c>reg</c>, <c>bus-range</c>, <c>ranges</c> with the I/O, memory and prefetchable
    /// windows, and the INTx <c>interrupt-map</c>), in device-tree source syntax.
    /// </summary>
    /// <param name="interruptParent">The phandle of the guest's GIC (libxl's vGIC node is <c>GUEST_PHANDLE_GIC</c>, 65000).</param>
    /// <param name="interruptParentAddressCells">
    /// The GIC node's <c>#address-cells</c>, which sets how many unit-address cells precede each parent interrupt
    /// specifier in <c>interrupt-map</c>: 0 for the vGIC libxl writes into a Xen guest's tree; 2 for QEMU's "virt"
    /// machine, whose GIC has ITS children.
    /// </param>
    /// <returns>The node.</returns>
    /// <exception cref="InvalidOperationException">The bridge is not an Arm64 bridge.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="interruptParentAddressCells"/> is not 0 to 3.</exception>
    public string DescribeDeviceTreeNode(uint interruptParent = 0xfde8, int interruptParentAddressCells = 0)
    {
        Arm64Platform arm = _arm ?? throw new InvalidOperationException("Only Arm64 guests are described by a device tree.");
        if (interruptParentAddressCells is < 0 or > 3)
        {
            throw new ArgumentOutOfRangeException(nameof(interruptParentAddressCells), interruptParentAddressCells, "A device-tree node has 0 to 3 address cells.");
        }

        string parentAddress = new StringBuilder().Insert(0, " 0x0", interruptParentAddressCells).ToString();
        var sb = new StringBuilder();
        string Cells64(ulong v) => string.Format(CultureInfo.InvariantCulture, "0x{0:x} 0x{1:x}", (uint)(v >> 32), (uint)v);
        sb.Append(FormattableString.Invariant($"pcie@{arm.EcamBase:x} {{\n"));
        sb.Append("\tcompatible = \"pci-host-ecam-generic\";\n");
        sb.Append("\tdevice_type = \"pci\";\n");
        sb.Append("\t#address-cells = <3>;\n\t#size-cells = <2>;\n\t#interrupt-cells = <1>;\n");
        sb.Append(FormattableString.Invariant($"\treg = <{Cells64(arm.EcamBase)} {Cells64((ulong)arm.BusCount << 20)}>;\n"));
        sb.Append(FormattableString.Invariant($"\tbus-range = <0x0 0x{arm.BusCount - 1:x}>;\n"));
        sb.Append(FormattableString.Invariant($"\tlinux,pci-domain = <{Segment}>;\n"));
        sb.Append("\tranges = <");
        // I/O: the bus's I/O window (what the bridge decodes; the aperture's first 4 KiB, legacy ports, are not
        // offered) at the aperture's CPU address plus the same offset, so the guest can only assign what decodes.
        PciWindow io = arm.IoWindow;
        sb.Append(FormattableString.Invariant($"0x01000000 0x0 0x{io.Base:x} {Cells64(arm.PioAperture.Base + io.Base)} {Cells64(io.Size)}\n\t\t  "));
        sb.Append(FormattableString.Invariant($"0x02000000 {Cells64(arm.Memory.Base)} {Cells64(arm.Memory.Base)} {Cells64(arm.Memory.Size)}\n\t\t  "));
        sb.Append(FormattableString.Invariant($"0x43000000 {Cells64(arm.Prefetchable.Base)} {Cells64(arm.Prefetchable.Base)} {Cells64(arm.Prefetchable.Size)}>;\n"));
        sb.Append("\tinterrupt-map-mask = <0x1800 0x0 0x0 0x7>;\n");
        sb.Append("\tinterrupt-map = <");
        for (int device = 0; device < 4; device++)
        {
            for (int pin = 1; pin <= 4; pin++)
            {
                // The parent's unit address (as many cells as its #address-cells), then the GIC SPI specifier:
                // <0 (SPI) number-32 4 (level high)>.
                sb.Append(FormattableString.Invariant($"{(device == 0 && pin == 1 ? string.Empty : "\n\t\t  ")}0x{device << 11:x} 0x0 0x0 0x{pin:x} 0x{interruptParent:x}{parentAddress} 0x0 0x{arm.IntxSpi(device, pin) - 32:x} 0x4"));
            }
        }

        sb.Append(">;\n};\n");
        return sb.ToString();
    }

    private static void CheckApart(PciHostBridge other, ushort segment, PciPlatform platform)
    {
        if (other.Segment == segment)
        {
            ThrowHelper.ThrowArgument(nameof(segment), $"Segment {segment} has a host bridge on this server already; give each bridge its own segment.");
        }

        if (platform is Arm64Platform arm && other._arm is Arm64Platform taken)
        {
            ReadOnlySpan<PciWindow> mine = [arm.Ecam, arm.Memory, arm.Prefetchable, arm.PioAperture];
            ReadOnlySpan<PciWindow> theirs = [taken.Ecam, taken.Memory, taken.Prefetchable, taken.PioAperture];
            foreach (PciWindow a in mine)
            {
                foreach (PciWindow b in theirs)
                {
                    if (a.Base <= b.End && b.Base <= a.End)
                    {
                        ThrowHelper.ThrowArgument(nameof(platform), $"The window {a} overlaps {b} of segment {other.Segment}'s host bridge; bridges on one server need addresses of their own.");
                    }
                }
            }
        }
    }

    void IPciBus.MapBar(PciDevice device, PciBar bar, ulong address)
    {
        if (bar.Kind == PciBarKind.Io)
        {
            if (_arm is null)
            {
                _server.MapRegion(bar.Region, RegionKind.Port, address);
                return;
            }

            // Arm64: I/O address A of the bus is MMIO address aperture + A; the device still sees port offsets.
            if (!_arm.PioAperture.Contains(_arm.PioAperture.Base + address, bar.Size) || address + bar.Size > _arm.PioAperture.Size)
            {
                ThrowHelper.ThrowArgument(nameof(address), $"I/O BAR {bar.Index} of {device.Name} at 0x{address:x} lies outside the PIO aperture {_arm.PioAperture}.");
            }

            _server.MapRegion(bar.Region, RegionKind.Mmio, _arm.PioAperture.Base + address);
            return;
        }

        // Arm64: the bridge forwards only its memory windows to the bus. A memory BAR (or ROM) programmed elsewhere —
        // over the ECAM window, the PIO aperture or guest RAM — is not reachable on real hardware, and claiming it
        // would steal those addresses from what does decode there (a later I/O BAR, configuration space).
        if (_arm is not null && !_arm.Memory.Contains(address, bar.Size) && !_arm.Prefetchable.Contains(address, bar.Size))
        {
            ThrowHelper.ThrowArgument(
                nameof(address),
                $"{bar.Kind} BAR {bar.Index} of {device.Name} at 0x{address:x} lies outside the bridge's memory windows {_arm.Memory} and {_arm.Prefetchable}.");
        }

        _server.MapRegion(bar.Region, RegionKind.Mmio, address);
    }

    void IPciBus.UnmapBar(PciDevice device, PciBar bar) => _server.UnmapRegion(bar.Region);

    void IPciBus.SetIntx(PciDevice device, bool asserted)
    {
        int pin = device.Identity.InterruptPin;
        if (pin == 0)
        {
            return;
        }

        var interrupts = _server.InterruptSink;
        if (_arm is null)
        {
            interrupts.SetPciIntxLevel(device.Address, pin - 1, asserted);
        }
        else
        {
            // Xen's vGIC injects on level 1 and ignores 0: both edges are forwarded (as QEMU does), and a new
            // event is a new rising edge.
            interrupts.SetIrqLevel(_arm.IntxSpi(device.Address.Device, pin), asserted);
        }
    }

    void IPciBus.SendMessage(PciDevice device, ulong address, uint data) => _server.InterruptSink.InjectMsi(address, data);

    /// <summary>Configuration access through the bridge's ECAM window (Arm64).</summary>
    internal PciDevice? FunctionAt(int bus, int device, int function) =>
        bus == 0 && _functions.TryGetValue(new PciSbdf(Segment, 0, device, function), out PciDevice? found) ? found : null;

    /// <summary>Function 00:00.0 of an Arm64 bridge: a class 06/00 host bridge with nothing to decode.</summary>
    private sealed class HostBridgeFunction : PciDevice
    {
        public HostBridgeFunction()
            : base("host-bridge", new PciIdentity { VendorId = 0x1b36, DeviceId = 0x0008, ClassCode = 0x060000 })
        {
        }

        protected override ulong ReadBar(PciBar bar, ulong offset, int size) => ulong.MaxValue;

        protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
        {
        }
    }

    /// <summary>The ECAM window: bus, device, function and register from the offset (1 MiB per bus, 4 KiB per function).</summary>
    private sealed class EcamWindow : DeviceModel
    {
        private readonly PciHostBridge _bridge;

        public EcamWindow(PciHostBridge bridge, Arm64Platform platform)
            : base("ecam")
        {
            _bridge = bridge;
            AddMmioRegion((ulong)platform.BusCount << 20, platform.EcamBase, AccessWidths.Byte | AccessWidths.Word | AccessWidths.DWord);
        }

        public override ulong Read(DeviceRegion region, ulong offset, int size)
        {
            PciDevice? function = Decode(offset, out int register);
            return function is null ? uint.MaxValue : function.ReadConfig(register, size);
        }

        public override void Write(DeviceRegion region, ulong offset, int size, ulong value) =>
            Decode(offset, out int register)?.WriteConfig(register, size, (uint)value);

        private PciDevice? Decode(ulong offset, out int register)
        {
            register = (int)(offset & 0xFFF);
            return _bridge.FunctionAt((int)(offset >> 20), (int)(offset >> 15) & 31, (int)(offset >> 12) & 7);
        }
    }
}
