using System;
using System.Collections.Generic;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Platforms;
using IoreqSdk.Server;

namespace IoreqSdk.Pci;

/// <summary>
/// The architecture-neutral centre of PCI: owns a segment and its functions, carries their configuration accesses,
/// maps their BARs into the dispatcher and Xen, and routes their interrupts — each the way its
/// <see cref="PciPlatform"/> says (Xen's <c>PCI_CONFIG</c> requests or an ECAM window; ports or a PIO aperture; the
/// platform's INTx lines). Several bridges (separate segments) can serve one guest.
/// </summary>
public sealed class PciHostBridge : IPciBus
{
    // The bridges built on each server, so a new one cannot take a segment or addresses another one owns.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IoreqServer, List<PciHostBridge>> s_bridges = new();

    private readonly IoreqServer _server;
    private readonly Dictionary<PciSbdf, PciDevice> _functions = new();

    // The same functions by device and function number ((device << 3) | function), for the ECAM window's decode on
    // every configuration access: an index where the dictionary hashed a PciSbdf and compared keys.
    private readonly PciDevice?[] _functionsByNumber = new PciDevice?[32 * 8];
    private readonly PciConfigAccess _configAccess;
    private readonly PciIoSpace _ioSpace;

    /// <summary>Creates a bridge serving through <paramref name="server"/>; add functions before the server starts.</summary>
    /// <param name="server">The ioreq server (not yet started).</param>
    /// <param name="platform">The machine's PCI rules; must describe the hypervisor's guests.</param>
    /// <param name="segment">The PCI segment.</param>
    public PciHostBridge(IoreqServer server, PciPlatform platform, ushort segment = 0)
    {
        _server = server ?? throw new ArgumentNullException(nameof(server));
        Platform = platform ?? throw new ArgumentNullException(nameof(platform));
        Segment = segment;
        if (platform.Architecture != server.Hypervisor.Architecture)
        {
            ThrowHelper.ThrowArgument(nameof(platform), $"A platform for {platform.Architecture} guests cannot serve {server.Hypervisor.Architecture} guests.");
        }

        platform.Validate();
        if (platform.UnreachableSegmentReason(segment) is string unreachable)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(segment), unreachable);
        }

        List<PciHostBridge> siblings = s_bridges.GetOrCreateValue(server);
        lock (siblings)
        {
            foreach (PciHostBridge other in siblings)
            {
                CheckApart(other, segment, platform);
            }
        }

        _configAccess = platform.ConfigAccess;
        _ioSpace = platform.IoSpace;
        _configAccess.AttachBridge(this, server);

        // Only a bridge that was built takes its segment and windows.
        lock (siblings)
        {
            siblings.Add(this);
        }
    }

    /// <summary>The PCI segment (domain) the bridge owns.</summary>
    public ushort Segment { get; }

    /// <summary>The platform deciding config access, I/O decoding and interrupt delivery.</summary>
    public PciPlatform Platform { get; }

    /// <summary>The functions behind the bridge, by address.</summary>
    public IReadOnlyDictionary<PciSbdf, PciDevice> Functions => _functions;

    bool IPciBus.MessageInterruptsAvailable => Platform.SupportsMessageInterrupts;

    /// <summary>Puts a function on bus 0 at a device and function number; before the server starts.</summary>
    /// <param name="device">The function.</param>
    /// <param name="deviceNumber">0–31.</param>
    /// <param name="function">0–7.</param>
    /// <returns>Its address.</returns>
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

        if (Platform.ReservedSlotReason(sbdf) is string reserved)
        {
            ThrowHelper.ThrowInvalidOperation(reserved);
        }

        if (!Platform.SupportsMessageInterrupts && device.HasMessageInterrupts)
        {
            if (device.Identity.InterruptPin == 0)
            {
                ThrowHelper.ThrowInvalidOperation(
                    $"{device.Name} cannot interrupt this guest: its platform delivers no MSI or MSI-X (Xen 4.17 injects none on Arm), and the device has no INTx pin to fall back to. Give it an INTx pin (PciIdentity.InterruptPin).");
            }

            // The guest's driver falls back to INTx when it finds no MSI capability.
            device.HideMessageInterrupts();
        }

        InterruptLine? intx = device.Identity.InterruptPin == 0
            ? null
            : Platform.CreateIntxLine(_server.Hypervisor, _server.Domain, sbdf, device.Identity.InterruptPin);
        device.AttachToBus(this, sbdf, intx);
        _server.AddDevice(device);
        _configAccess.AttachFunction(_server, sbdf, device);

        _functions.Add(sbdf, device);
        _functionsByNumber[(deviceNumber << 3) | function] = device;

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
    /// The device-tree node a toolstack adds to the guest's tree to describe this bridge (see
    /// <see cref="EcamPlatform.DescribeDeviceTreeNode"/>), in device-tree source syntax.
    /// </summary>
    /// <param name="interruptParent">The phandle of the guest's interrupt controller (libxl's vGIC node is <c>GUEST_PHANDLE_GIC</c>, 65000).</param>
    /// <param name="interruptParentAddressCells">
    /// The interrupt controller's <c>#address-cells</c>, which sets how many unit-address cells precede each parent
    /// interrupt specifier in <c>interrupt-map</c>: 0 for the vGIC libxl writes into a Xen guest's tree; 2 for QEMU's
    /// "virt" machine, whose GIC has ITS children.
    /// </param>
    /// <returns>The node.</returns>
    /// <exception cref="InvalidOperationException">The bridge's platform is not described by a device tree.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="interruptParentAddressCells"/> is not 0 to 3.</exception>
    public string DescribeDeviceTreeNode(uint interruptParent = Arm64Platform.GuestGicPhandle, int interruptParentAddressCells = 0) =>
        Platform is EcamPlatform ecam
            ? ecam.DescribeDeviceTreeNode(Segment, interruptParent, interruptParentAddressCells)
            : throw new InvalidOperationException("This bridge's platform is not described to the guest by a device tree (its firmware enumerates the bus).");

    /// <summary>The line a function's INTx pin drives, or <see langword="null"/> when it has no pin (for observers and diagnostics).</summary>
    /// <param name="function">A function behind this bridge.</param>
    /// <returns>The line.</returns>
    public InterruptLine? IntxLineOf(PciDevice function) =>
        function is not null && _functions.TryGetValue(function.Address, out PciDevice? found) && ReferenceEquals(found, function)
            ? function.IntxLine
            : throw new ArgumentException("The function is not behind this bridge.", nameof(function));

    private static void CheckApart(PciHostBridge other, ushort segment, PciPlatform platform)
    {
        if (other.Segment == segment)
        {
            ThrowHelper.ThrowArgument(nameof(segment), $"Segment {segment} has a host bridge on this server already; give each bridge its own segment.");
        }

        foreach (PciWindow a in platform.ExclusiveWindows)
        {
            foreach (PciWindow b in other.Platform.ExclusiveWindows)
            {
                if (a.Base <= b.End && b.Base <= a.End)
                {
                    ThrowHelper.ThrowArgument(nameof(platform), $"The window {a} overlaps {b} of segment {other.Segment}'s host bridge; bridges on one server need addresses of their own.");
                }
            }
        }
    }

    RegionMapResult IPciBus.MapBar(PciDevice device, PciBar bar, ulong address)
    {
        if (bar.Kind == PciBarKind.Io)
        {
            // I/O address A of the bus lands where the platform's I/O space puts it (a port, or the PIO aperture);
            // the device still sees port offsets.
            return _ioSpace.Unreachable(address, bar.Size) is not null
                ? RegionMapResult.Unreachable
                : _server.TryMapRegion(bar.Region, _ioSpace.Space, _ioSpace.GuestAddress(address));
        }

        // A bridge that forwards only its memory windows to the bus: a memory BAR (or ROM) programmed elsewhere —
        // over the ECAM window, the PIO aperture or guest RAM — is not reachable on real hardware, and claiming it
        // would steal those addresses from what does decode there (a later I/O BAR, configuration space).
        if (Platform.ConfinesMemoryBarsToWindows && !Platform.MemoryWindow.Contains(address, bar.Size) && !Platform.PrefetchableWindow.Contains(address, bar.Size))
        {
            return RegionMapResult.OutsideWindows;
        }

        return _server.TryMapRegion(bar.Region, RegionKind.Mmio, address);
    }

    void IPciBus.UnmapBar(PciDevice device, PciBar bar) => _server.UnmapRegion(bar.Region);

    void IPciBus.SendMessage(PciDevice device, ulong address, uint data) => _server.Hypervisor.InjectMsi(_server.Domain, address, data);

    /// <summary>The function an ECAM window's offset names (bus 0 only: the bridge has one bus).</summary>
    /// <param name="bus">The bus number.</param>
    /// <param name="device">0–31.</param>
    /// <param name="function">0–7.</param>
    internal PciDevice? FunctionAt(int bus, int device, int function) =>
        bus == 0 ? _functionsByNumber[((device & 31) << 3) | (function & 7)] : null;
}
