using System;
using IoreqSdk.Abi;

namespace IoreqSdk.Hypervisor;

/// <summary>
/// The narrow port between the SDK and the hypervisor, mirroring the Xen tools API (libxendevicemodel,
/// libxenforeignmemory, libxenevtchn). The engine is written against this interface only, so the same code runs
/// over real Xen and over the simulated one. Failures throw <see cref="HypervisorException"/>.
/// </summary>
public interface IHypervisor : IDisposable
{
    /// <summary>The architecture of the guests.</summary>
    GuestArchitecture Architecture { get; }

    /// <summary>Creates a disabled ioreq server (<c>xendevicemodel_create_ioreq_server</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="mode">The buffered-ring mode; Arm accepts only <see cref="BufferedIoreqMode.Off"/>.</param>
    /// <returns>The server id.</returns>
    ushort CreateIoreqServer(ushort domain, BufferedIoreqMode mode);

    /// <summary>Maps a server's pages (<c>xenforeignmemory_map_resource</c>); do it before enabling the server.</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="server">The server id.</param>
    /// <param name="buffered">Whether the server has a ring (then both frames are mapped).</param>
    /// <returns>The mapping.</returns>
    IoreqServerPages AcquireIoreqServerPages(ushort domain, ushort server, bool buffered);

    /// <summary>The guest-side event-channel port of the buffered ring (<c>xendevicemodel_get_ioreq_server_info</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="server">The server id.</param>
    /// <returns>The port.</returns>
    uint GetBufferedIoreqPort(ushort domain, ushort server);

    /// <summary>Claims an inclusive range (<c>xendevicemodel_map_io_range_to_ioreq_server</c> or <c>_map_pcidev_</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="server">The server id.</param>
    /// <param name="type">Ports, memory or PCI functions (encoded SBDFs).</param>
    /// <param name="start">The first address.</param>
    /// <param name="end">The last address (inclusive).</param>
    void MapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end);

    /// <summary>Releases a range claimed before (<c>xendevicemodel_unmap_io_range_from_ioreq_server</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="server">The server id.</param>
    /// <param name="type">Ports, memory or PCI functions.</param>
    /// <param name="start">The first address.</param>
    /// <param name="end">The last address (inclusive).</param>
    void UnmapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end);

    /// <summary>Enables or disables a server (<c>xendevicemodel_set_ioreq_server_state</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="server">The server id.</param>
    /// <param name="enabled">The new state.</param>
    void SetIoreqServerState(ushort domain, ushort server, bool enabled);

    /// <summary>Destroys a server and its ranges (<c>xendevicemodel_destroy_ioreq_server</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="server">The server id.</param>
    void DestroyIoreqServer(ushort domain, ushort server);

    /// <summary>The guest's vCPU count, which is the number of ioreq slots (<c>xendevicemodel_nr_vcpus</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <returns>The count.</returns>
    int GetVcpuCount(ushort domain);

    /// <summary>Opens an event-channel handle (<c>xenevtchn_open</c>).</summary>
    /// <returns>The handle.</returns>
    IEventChannel OpenEventChannel();

    /// <summary>Sets a PCI INTx line (x86, <c>xendevicemodel_set_pci_intx_level</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="device">The function (segment and bus must be 0 on Xen).</param>
    /// <param name="intx">0–3 for INTA–INTD.</param>
    /// <param name="asserted">The level.</param>
    void SetPciIntxLevel(ushort domain, PciSbdf device, int intx, bool asserted);

    /// <summary>Sets an ISA IRQ line (x86, <c>xendevicemodel_set_isa_irq_level</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="irq">0–15.</param>
    /// <param name="asserted">The level.</param>
    void SetIsaIrqLevel(ushort domain, int irq, bool asserted);

    /// <summary>Sets an interrupt line by number (Arm SPIs, <c>xendevicemodel_set_irq_level</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="irq">The SPI (32 or more).</param>
    /// <param name="asserted">The level.</param>
    void SetIrqLevel(ushort domain, uint irq, bool asserted);

    /// <summary>Injects an MSI (x86, <c>xendevicemodel_inject_msi</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="address">The message address.</param>
    /// <param name="data">The message data.</param>
    void InjectMsi(ushort domain, ulong address, uint data);

    /// <summary>
    /// Irreversibly limits every handle of this hypervisor — the device-model and foreign-memory handles, and every
    /// event-channel handle it opened or will open — to <paramref name="domain"/> (<c>xendevicemodel_restrict</c>,
    /// <c>xenforeignmemory_restrict</c>, <c>xenevtchn_restrict</c>). Afterwards every call for that domain works as
    /// before (ranges, interrupts, guest memory, the server's pages, its event channels, teardown) and a call for any
    /// other domain fails with <c>EPERM</c> (<c>EACCES</c> for event channels), so a device model its guest took over
    /// cannot reach another domain through them. Restricting again to the same domain does nothing.
    /// </summary>
    /// <param name="domain">The only domain the handles may act on from now on.</param>
    /// <exception cref="HypervisorException">The kernel refused (a handle already restricted to another domain: <c>EINVAL</c>).</exception>
    void Restrict(ushort domain);

    /// <summary>Maps guest frames into this process (<c>xenforeignmemory_map</c>).</summary>
    /// <param name="domain">The guest.</param>
    /// <param name="firstFrame">The first guest frame number (4 KiB units).</param>
    /// <param name="count">How many consecutive frames.</param>
    /// <param name="writable">Whether the mapping is writable.</param>
    /// <returns>The mapping.</returns>
    IMappedPages MapGuestFrames(ushort domain, ulong firstFrame, int count, bool writable);
}
