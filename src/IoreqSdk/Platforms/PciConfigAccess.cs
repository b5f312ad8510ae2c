using System;
using IoreqSdk.Abi;
using IoreqSdk.Pci;
using IoreqSdk.Server;

namespace IoreqSdk.Platforms;

/// <summary>
/// How a guest's configuration cycles reach a host bridge — one of the two ways Xen allows: the hypervisor decodes
/// them (<see cref="HypervisorDecodedPciConfig"/>) or the bridge owns an MMIO window (<see cref="EcamPciConfig"/>).
/// A platform picks one; the bridge lets it wire itself in.
/// </summary>
public abstract class PciConfigAccess
{
    private protected PciConfigAccess()
    {
    }

    /// <summary>Wires the mechanism in when the bridge is built.</summary>
    internal abstract void AttachBridge(PciHostBridge bridge, IoreqServer server);

    /// <summary>Routes one function's configuration cycles.</summary>
    internal abstract void AttachFunction(IoreqServer server, PciSbdf address, PciDevice function);
}

/// <summary>
/// Xen decodes the guest's configuration mechanism (x86 0xCF8/0xCFC) and sends <c>IOREQ_TYPE_PCI_CONFIG</c> requests
/// for each function the server claims (<c>map_pcidev_to_ioreq_server</c>).
/// </summary>
public sealed class HypervisorDecodedPciConfig : PciConfigAccess
{
    /// <summary>The one instance.</summary>
    public static HypervisorDecodedPciConfig Instance { get; } = new();

    private HypervisorDecodedPciConfig()
    {
    }

    internal override void AttachBridge(PciHostBridge bridge, IoreqServer server)
    {
    }

    internal override void AttachFunction(IoreqServer server, PciSbdf address, PciDevice function) => server.AddPciFunction(address, function);
}

/// <summary>
/// An ECAM window in guest MMIO space (1 MiB per bus, 4 KiB per function) that the bridge claims and decodes itself;
/// the bridge answers as function 00:00.0 (class 06/00), as a real ECAM host bridge does.
/// </summary>
public sealed class EcamPciConfig : PciConfigAccess
{
    /// <summary>Describes the window.</summary>
    /// <param name="window">Its addresses: a multiple of 1 MiB long, starting on a 1 MiB boundary.</param>
    public EcamPciConfig(PciWindow window)
    {
        if ((window.Base & ((1UL << 20) - 1)) != 0 || (window.Size & ((1UL << 20) - 1)) != 0 || window.Size > 256UL << 20)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(window), $"An ECAM window {window} starts on a 1 MiB boundary and covers 1 to 256 buses of 1 MiB.");
        }

        Window = window;
    }

    /// <summary>The window.</summary>
    public PciWindow Window { get; }

    /// <summary>How many buses it covers.</summary>
    public int BusCount => (int)(Window.Size >> 20);

    /// <summary>The guest-physical address of a function's register.</summary>
    /// <param name="function">The function (its bus within the window).</param>
    /// <param name="register">The register, 0–4095.</param>
    /// <returns>The address.</returns>
    public ulong AddressOf(PciSbdf function, int register) =>
        Window.Base + ((ulong)function.Bus << 20) + ((ulong)function.Device << 15) + ((ulong)function.Function << 12) + (uint)(register & 0xFFF);

    internal override void AttachBridge(PciHostBridge bridge, IoreqServer server)
    {
        server.AddDevice(new EcamWindow(bridge, Window));
        bridge.AddDevice(new HostBridgeFunction(), 0);
    }

    internal override void AttachFunction(IoreqServer server, PciSbdf address, PciDevice function)
    {
        // The ECAM window carries the function's cycles: nothing to claim per function.
    }
}
