using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Pci;

namespace IoreqSdk.Server;

/// <summary>One ioreq server serving one guest domain: its devices, its lifecycle, its counters.</summary>
public interface IIoreqServer : IDisposable
{
    /// <summary>The guest domain.</summary>
    ushort Domain { get; }

    /// <summary>The server id Xen assigned; valid while running.</summary>
    ushort Id { get; }

    /// <summary>Whether the server is running (started and not yet stopped).</summary>
    bool IsRunning { get; }

    /// <summary>The server's counters.</summary>
    IoreqServerStatistics Statistics { get; }

    /// <summary>Raised on the event loop when the guest changes its RTC (x86, buffered). Handlers are contained like
    /// device code: an exception is counted in <see cref="IoreqServerStatistics.DeviceFaults"/>, the others still run.</summary>
    event EventHandler<TimeOffsetEventArgs>? TimeOffsetChanged;

    /// <summary>Adds a device; its regions with fixed addresses are claimed when the server starts.</summary>
    /// <param name="device">The device.</param>
    void AddDevice(IDeviceModel device);

    /// <summary>Routes a PCI function's configuration requests (x86 <c>PCI_CONFIG</c>) to its configuration space.</summary>
    /// <param name="sbdf">The function.</param>
    /// <param name="config">Its configuration space.</param>
    void AddPciFunction(PciSbdf sbdf, IPciConfigSpace config);

    /// <summary>Creates the server in Xen, maps its pages, claims its ranges, enables it, binds its ports and starts its event loop.</summary>
    void Start();

    /// <summary>
    /// Stops the event loop and undoes <see cref="Start"/> in mirror order. Safe to call more than once, and from any
    /// thread, concurrently: from another thread it returns once the server is torn down; from the loop thread (a
    /// device handler, posted work) it requests the stop and returns — the request being served is answered first.
    /// </summary>
    void Stop();
}
