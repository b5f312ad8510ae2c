using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Virtio.Mmio;

namespace Demu;

/// <summary>--device-tree: the node a toolstack adds to an Arm64 guest's device tree for demu's host bridge (or virtio-mmio device).</summary>
internal static class DeviceTree
{
    public static int Print(DemuSettings settings)
    {
        if (settings.Architecture != GuestArchitecture.Arm64)
        {
            settings.Error.WriteLine("demu: --device-tree describes an Arm64 host bridge; add --platform arm64.");
            return 2;
        }

        if (settings.IsVirtio && settings.Transport == VirtioTransport.Mmio)
        {
            // The node libxl itself writes for a virtio-mmio device in its first slot.
            settings.Out.WriteLine(VirtioMmioTransport.DescribeDeviceTreeNodeAt(settings.VirtioMmioBase, settings.VirtioMmioLine));
            return 0;
        }

        // The node depends on the bridge's layout only; a simulated server gives the bridge what it needs to exist.
        using var xen = new SimulatedHypervisor(new SimulationOptions { Architecture = GuestArchitecture.Arm64 });
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        var bridge = new PciHostBridge(server, settings.Arm64, settings.Address.Segment);
        settings.Out.WriteLine(bridge.DescribeDeviceTreeNode());
        return 0;
    }
}
