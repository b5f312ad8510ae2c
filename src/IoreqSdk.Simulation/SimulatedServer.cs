using System.Threading;
using IoreqSdk.Abi;

namespace IoreqSdk.Simulation;

/// <summary>Xen's side of one ioreq server: its pages, ports, rangesets and state.</summary>
internal sealed class SimulatedServer
{
    public SimulatedServer(ushort id, BufferedIoreqMode mode, GuestPort[] vcpuPorts, GuestPort? bufferedPort)
    {
        Id = id;
        Mode = mode;
        Pages = new NativePages(2 * 4096);
        VcpuPorts = vcpuPorts;
        BufferedPort = bufferedPort;
    }

    // Xen's own reference plus one per mapping the device model holds: as in Xen, destroying the server does not
    // free pages a device model still maps (its loop may still be writing a response there).
    private int _pageHolds = 1;

    public ushort Id { get; }

    public void HoldPages() => Interlocked.Increment(ref _pageHolds);

    /// <summary>A hold for a vCPU's access in flight (Xen's vCPU sends under the server's lock): refused once the pages are freed.</summary>
    public bool TryHoldPages()
    {
        int holds = Volatile.Read(ref _pageHolds);
        while (holds > 0)
        {
            int seen = Interlocked.CompareExchange(ref _pageHolds, holds + 1, holds);
            if (seen == holds)
            {
                return true;
            }

            holds = seen;
        }

        return false;
    }

    public void ReleasePages()
    {
        if (Interlocked.Decrement(ref _pageHolds) == 0)
        {
            Pages.Dispose();
        }
    }

    public BufferedIoreqMode Mode { get; }

    public bool Enabled { get; set; }

    public bool PagesAcquired { get; set; }

    /// <summary>Frame 0 (the ring) at +0, frame 1 (the ioreq page) at +4096.</summary>
    public NativePages Pages { get; }

    public SharedIoPage IoreqPage => new(Pages.Address + 4096);

    public BufferedIoPage Ring => new(Pages.Address);

    public GuestPort[] VcpuPorts { get; }

    public GuestPort? BufferedPort { get; }

    /// <summary>The rangesets per <see cref="IoRangeType"/>: port, memory, PCI.</summary>
    public SimulatedRangeSet[] Ranges { get; } = [new(), new(), new()];

    /// <summary>Serialises Xen's producer side of the ring (Xen holds a per-server lock there).</summary>
    public object RingLock { get; } = new();

    public bool Claims(IoRangeType type, ulong first, ulong last) => Ranges[(int)type].Covers(first, last);
}
