using System;
using System.IO;
using System.Runtime.InteropServices;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Xen;

/// <summary>
/// Real Xen, through its stable tool libraries: <c>libxendevicemodel.so.1</c> (ioreq servers, ranges, interrupts),
/// <c>libxenforeignmemory.so.1</c> (the server's pages and guest memory) and <c>libxenevtchn.so.1</c> (event
/// channels). The process must run where it has device-model privilege over the guest: dom0 as root, or a driver
/// domain made the guest's target.
/// </summary>
public sealed class XenHypervisor : IHypervisor
{
    /// <summary>The privcmd device every Xen tool library opens.</summary>
    public const string PrivcmdPath = "/dev/xen/privcmd";

    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int PageSize = IoreqServerResource.PageSize;

    private readonly SafeXenDeviceModelHandle _deviceModel;
    private readonly SafeXenForeignMemoryHandle _foreignMemory;

    private readonly XenHandleRestriction _restriction;

    private XenHypervisor(SafeXenDeviceModelHandle deviceModel, SafeXenForeignMemoryHandle foreignMemory, GuestArchitecture architecture)
    {
        _deviceModel = deviceModel;
        _foreignMemory = foreignMemory;
        _restriction = new XenHandleRestriction(deviceModel, foreignMemory);
        Architecture = architecture;
    }

    /// <summary>
    /// Whether this machine can run the backend: an x86-64 or Arm64 process, Xen's libraries installed and
    /// <see cref="PrivcmdPath"/> present. Privilege over a particular guest is only known when its server is created.
    /// </summary>
    public static bool IsSupported => Probe(XenLibraries.Required, PrivcmdPath) is null;

    /// <inheritdoc/>
    public GuestArchitecture Architecture { get; }

    /// <summary>Opens the backend, or explains why it cannot.</summary>
    /// <returns>The backend.</returns>
    /// <exception cref="PlatformNotSupportedException">
    /// Xen's libraries are missing (the message names the packages to install) or the process is neither x86-64 nor Arm64.
    /// </exception>
    /// <exception cref="HypervisorException">
    /// There is no <see cref="PrivcmdPath"/> (not running on Xen, or not in dom0 / a driver domain), or it cannot be opened.
    /// </exception>
    public static XenHypervisor Open() => Open(XenLibraries.Required, PrivcmdPath);

    /// <summary>Opens the backend if this machine can run it.</summary>
    /// <param name="hypervisor">The backend, on success.</param>
    /// <param name="reason">Why not, otherwise: a message that says what to do.</param>
    /// <returns>Whether it opened.</returns>
    public static bool TryOpen([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out XenHypervisor? hypervisor, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? reason)
    {
        try
        {
            hypervisor = Open();
            reason = null;
            return true;
        }
        catch (Exception e) when (e is PlatformNotSupportedException or HypervisorException)
        {
            hypervisor = null;
            reason = e.Message;
            return false;
        }
    }

    /// <summary>Open with given library names and device path: how tests reach the failure paths on any machine.</summary>
    internal static XenHypervisor Open(string[] libraries, string privcmd)
    {
        Exception? problem = Probe(libraries, privcmd);
        if (problem is not null)
        {
            throw problem;
        }

        GuestArchitecture architecture = HostArchitecture()!.Value;
        nint dm = Interop.XenDeviceModel.Open(0, 0);
        if (dm == 0)
        {
            throw XenErrors.LastError("xendevicemodel_open");
        }

        var deviceModel = SafeXenHandle.Adopt<SafeXenDeviceModelHandle>(dm);
        nint fm = Interop.XenForeignMemory.Open(0, 0);
        if (fm == 0)
        {
            HypervisorException error = XenErrors.LastError("xenforeignmemory_open");
            deviceModel.Dispose();
            throw error;
        }

        return new XenHypervisor(deviceModel, SafeXenHandle.Adopt<SafeXenForeignMemoryHandle>(fm), architecture);
    }

    /// <inheritdoc/>
    public unsafe ushort CreateIoreqServer(ushort domain, BufferedIoreqMode mode)
    {
        using var lease = new HandleLease(_deviceModel);
        ushort id;
        return Interop.XenDeviceModel.CreateIoreqServer(lease.Value, domain, (int)mode, &id) == 0
            ? id
            : throw XenErrors.LastError("xendevicemodel_create_ioreq_server", domain);
    }

    /// <inheritdoc/>
    public unsafe IoreqServerPages AcquireIoreqServerPages(ushort domain, ushort server, bool buffered)
    {
        // Resource frames: 0 is the buffered ring, 1 + n the n-th synchronous page (128 slots of 32 bytes per page). Without a ring, frame 0 does not exist (ENOENT), so the mapping starts at frame 1.
        int vcpus = GetVcpuCount(domain);
        int ioreqFrames = (vcpus * IoRequest.SizeInBytes + PageSize - 1) / PageSize;
        int first = buffered ? (int)IoreqServerResource.BufferedIoreqFrame : (int)IoreqServerResource.IoreqFrame0;
        int count = (buffered ? 1 : 0) + ioreqFrames;
        using var lease = new HandleLease(_foreignMemory);
        void* address = null;
        nint resource = Interop.XenForeignMemory.MapResource(
            lease.Value, domain, IoreqServerResource.ResourceType, server, (nuint)first, (nuint)count, &address, ProtRead | ProtWrite, 0);
        if (resource == 0)
        {
            throw XenErrors.LastError("xenforeignmemory_map_resource", domain);
        }

        var mapping = new XenResourceMapping(_foreignMemory, resource, (nint)address, count);
        nint ioreqPage = buffered ? (nint)address + PageSize : (nint)address;
        return new IoreqServerPages(mapping, ioreqPage, buffered ? (nint)address : 0);
    }

    /// <inheritdoc/>
    public unsafe uint GetBufferedIoreqPort(ushort domain, ushort server)
    {
        // Null frame pointers make the library set XEN_DMOP_no_gfns: Arm refuses the legacy frames, and asking for
        // them after the resource mapping fails on x86 too.
        using var lease = new HandleLease(_deviceModel);
        uint port;
        return Interop.XenDeviceModel.GetIoreqServerInfo(lease.Value, domain, server, null, null, &port) == 0
            ? port
            : throw XenErrors.LastError("xendevicemodel_get_ioreq_server_info", domain);
    }

    /// <inheritdoc/>
    public void MapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end) =>
        ChangeRange(domain, server, type, start, end, map: true);

    /// <inheritdoc/>
    public void UnmapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end) =>
        ChangeRange(domain, server, type, start, end, map: false);

    /// <inheritdoc/>
    public void SetIoreqServerState(ushort domain, ushort server, bool enabled)
    {
        using var lease = new HandleLease(_deviceModel);
        XenErrors.ThrowIfFailed(Interop.XenDeviceModel.SetIoreqServerState(lease.Value, domain, server, enabled ? 1 : 0), "xendevicemodel_set_ioreq_server_state", domain);
    }

    /// <inheritdoc/>
    public void DestroyIoreqServer(ushort domain, ushort server)
    {
        using var lease = new HandleLease(_deviceModel);
        XenErrors.ThrowIfFailed(Interop.XenDeviceModel.DestroyIoreqServer(lease.Value, domain, server), "xendevicemodel_destroy_ioreq_server", domain);
    }

    /// <inheritdoc/>
    public unsafe int GetVcpuCount(ushort domain)
    {
        using var lease = new HandleLease(_deviceModel);
        uint vcpus;
        XenErrors.ThrowIfFailed(Interop.XenDeviceModel.NrVcpus(lease.Value, domain, &vcpus), "xendevicemodel_nr_vcpus", domain);
        return (int)vcpus;
    }

    /// <summary>The domain <see cref="Restrict"/> limited the handles to, or <see langword="null"/>.</summary>
    public ushort? RestrictedTo => _restriction.RestrictedTo;

    /// <inheritdoc/>
    public IEventChannel OpenEventChannel() => _restriction.OpenChannel();

    /// <inheritdoc/>
    public void Restrict(ushort domain) => _restriction.Restrict(domain);

    /// <inheritdoc/>
    public void SetPciIntxLevel(ushort domain, PciSbdf device, int intx, bool asserted) =>
        XenInterruptCalls.SetPciIntxLevel(_deviceModel, domain, device, intx, asserted);

    /// <inheritdoc/>
    public void SetIsaIrqLevel(ushort domain, int irq, bool asserted) => XenInterruptCalls.SetIsaIrqLevel(_deviceModel, domain, irq, asserted);

    /// <inheritdoc/>
    public void SetIrqLevel(ushort domain, uint irq, bool asserted) => XenInterruptCalls.SetIrqLevel(_deviceModel, domain, irq, asserted);

    /// <inheritdoc/>
    public void InjectMsi(ushort domain, ulong address, uint data) => XenInterruptCalls.InjectMsi(_deviceModel, domain, address, data);

    /// <inheritdoc/>
    public IMappedPages MapGuestFrames(ushort domain, ulong firstFrame, int count, bool writable) =>
        XenGuestFrames.Map(_foreignMemory, domain, firstFrame, count, writable);

    /// <summary>Closes the libraries' handles (after every mapping made through them is disposed).</summary>
    public void Dispose()
    {
        _foreignMemory.Dispose();
        _deviceModel.Dispose();
    }

    private static Exception? Probe(string[] libraries, string privcmd)
    {
        if (HostArchitecture() is null)
        {
            return new PlatformNotSupportedException(
                $"IoreqSdk's Xen backend runs on x86-64 and Arm64 Linux; this process is {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}.");
        }

        string? missing = XenLibraries.FindMissing(libraries);
        if (missing is not null)
        {
            return new PlatformNotSupportedException($"Xen's library {missing} could not be loaded: {XenLibraries.InstallHint}.");
        }

        if (!File.Exists(privcmd))
        {
            return new HypervisorException(
                "open " + privcmd,
                Errno.ENOENT,
                $"{privcmd} does not exist: this is not a Xen domain with privilege over guests. Run the device model in dom0 "
                + "(or a driver domain that is the guest's target) as root, with the xen-privcmd and xen-evtchn drivers loaded "
                + "(mount xenfs on /proc/xen if your distribution does not).");
        }

        return null;
    }

    private static GuestArchitecture? HostArchitecture() =>
        !RuntimeInformation.IsOSPlatform(OSPlatform.Linux) ? null
        : RuntimeInformation.ProcessArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.X64 => GuestArchitecture.X86,
            System.Runtime.InteropServices.Architecture.Arm64 => GuestArchitecture.Arm64,
            _ => null,
        };

    private void ChangeRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end, bool map)
    {
        using var lease = new HandleLease(_deviceModel);
        int result;
        string operation;
        if (type == IoRangeType.Pci)
        {
            // PCI ranges carry encoded SBDFs; the library takes the parts (and encodes them again).
            PciSbdf function = PciSbdf.FromValue((uint)start);
            if (start != end)
            {
                throw new ArgumentException("A PCI range names one function (start == end).", nameof(end));
            }

            operation = map ? "xendevicemodel_map_pcidev_to_ioreq_server" : "xendevicemodel_unmap_pcidev_from_ioreq_server";
            result = map
                ? Interop.XenDeviceModel.MapPcidevToIoreqServer(lease.Value, domain, server, function.Segment, function.Bus, (byte)function.Device, (byte)function.Function)
                : Interop.XenDeviceModel.UnmapPcidevFromIoreqServer(lease.Value, domain, server, function.Segment, function.Bus, (byte)function.Device, (byte)function.Function);
        }
        else
        {
            int isMmio = type == IoRangeType.Memory ? 1 : 0;
            operation = map ? "xendevicemodel_map_io_range_to_ioreq_server" : "xendevicemodel_unmap_io_range_from_ioreq_server";
            result = map
                ? Interop.XenDeviceModel.MapIoRangeToIoreqServer(lease.Value, domain, server, isMmio, start, end)
                : Interop.XenDeviceModel.UnmapIoRangeFromIoreqServer(lease.Value, domain, server, isMmio, start, end);
        }

        XenErrors.ThrowIfFailed(result, operation, domain);
    }
}
