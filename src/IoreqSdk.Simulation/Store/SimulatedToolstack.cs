using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;

namespace IoreqSdk.Simulation.Store;

/// <summary>
/// The toolstack's xenstore steps for a guest, as Xen 4.17's libxl takes them: the domain's home directory, a virtio
/// disk's backend and frontend directories with the same keys and permissions as libxl_disk.c and
/// libxl__device_generic_add write (in one transaction, retried on EAGAIN), the wait for the backend's InitWait with
/// libxl's 10 s timeout on a <see cref="SimulatedClock"/>, and the domain's destruction.
/// </summary>
public sealed class SimulatedToolstack : IDisposable
{
    private readonly SimulatedXenStore _store;
    private readonly IXenStore _dom0;

    /// <summary>A toolstack in dom0 of <paramref name="store"/>, timing out on <paramref name="clock"/>.</summary>
    public SimulatedToolstack(SimulatedXenStore store, SimulatedClock clock)
    {
        _store = store ?? throw new ArgumentNullException(nameof(store));
        Clock = clock ?? throw new ArgumentNullException(nameof(clock));
        _dom0 = store.Connect(0);
    }

    /// <summary>The clock libxl's timeouts run on.</summary>
    public SimulatedClock Clock { get; }

    /// <summary>libxl__device_disk_dev_number("xvda"): the devid of a guest's first xvd disk.</summary>
    public const uint XvdaDeviceId = 51712;

    /// <summary>Builds <paramref name="domain"/>'s xenstore home (owned by dom0, readable by the guest, as libxl does) and introduces it.</summary>
    public void CreateDomain(ushort domain, string? name = null)
    {
        string home = XenStorePaths.DomainPath(domain);
        string id = domain.ToString(CultureInfo.InvariantCulture);
        BackendDeviceDescription.WriteDevice(_dom0, home, [new XenStorePermissionEntry(0, XenStoreAccess.None), new XenStorePermissionEntry(domain, XenStoreAccess.Read)], new Dictionary<string, string>
        {
            ["domid"] = id,
            ["name"] = name ?? "guest" + id,
        });
        _store.IntroduceDomain(domain);
    }

    /// <summary>
    /// What libxl writes for <c>disk = [ 'backend=&lt;backend&gt;, backendtype=standalone, specification=virtio, vdev=xvda, target=&lt;image&gt;' ]</c>:
    /// the backend directory (owner the backend, read for the guest) with <c>state</c> 1, the frontend directory (owner
    /// the guest, read for the backend), libxl's own record. Returns the backend directory.
    /// </summary>
    public string AddVirtioDisk(ushort domain, string image, ulong mmioBase, uint irq, bool writable = true, ushort backend = 0, uint deviceId = XvdaDeviceId, string vdev = "xvda")
    {
        string backendPath = BackendDeviceDescription.BackendPath(backend, XenstoreBackendService.VirtioDiskKind, domain, deviceId);
        string frontendPath = FrontendPath(domain, deviceId);
        string domainText = domain.ToString(CultureInfo.InvariantCulture);
        string initialising = ((int)XenbusState.Initialising).ToString(CultureInfo.InvariantCulture);
        var back = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["frontend"] = frontendPath,
            ["params"] = image,
            ["frontend-id"] = domainText,
            ["online"] = "1",
            ["removable"] = "0",
            ["bootable"] = "1",
            ["state"] = initialising,
            ["dev"] = vdev,
            ["type"] = "standalone",
            ["mode"] = writable ? "w" : "r",
            ["device-type"] = "disk",
            ["discard-enable"] = "1",
            ["specification"] = "virtio",
            ["transport"] = "mmio",
            ["base"] = mmioBase.ToString(CultureInfo.InvariantCulture),
            ["irq"] = irq.ToString(CultureInfo.InvariantCulture),
            ["grant_usage"] = backend == 0 ? "0" : "1",
        };
        var front = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["backend"] = backendPath,
            ["backend-id"] = backend.ToString(CultureInfo.InvariantCulture),
            ["state"] = initialising,
            ["virtual-device"] = deviceId.ToString(CultureInfo.InvariantCulture),
            ["device-type"] = "disk",
            ["trusted"] = "1",
        };
        BackendDeviceDescription.WriteDevice(_dom0, frontendPath, [new XenStorePermissionEntry(domain, XenStoreAccess.None), new XenStorePermissionEntry(backend, XenStoreAccess.Read)], front);
        BackendDeviceDescription.WriteDevice(_dom0, backendPath, [new XenStorePermissionEntry(backend, XenStoreAccess.None), new XenStorePermissionEntry(domain, XenStoreAccess.Read)], back);
        BackendDeviceDescription.WriteDevice(_dom0, LibxlPath(domain, deviceId), [new XenStorePermissionEntry(0, XenStoreAccess.None)], new Dictionary<string, string>
        {
            ["frontend"] = frontendPath,
            ["backend"] = backendPath,
        });
        return backendPath;
    }

    /// <summary>What <c>demu describe</c> writes: a device in the SDK's namespace.</summary>
    public string AddSdkDevice(ushort domain, uint deviceId, string type, IReadOnlyDictionary<string, string> keys, ushort backend = 0) =>
        BackendDeviceDescription.DescribeSdkDevice(_dom0, backend, domain, deviceId, type, keys);

    /// <summary>
    /// libxl__wait_device_connection: true once the backend's state is InitWait, false when <see cref="Clock"/> has moved
    /// libxl's 10 s on first (the toolstack then fails the domain's creation).
    /// </summary>
    public async Task<bool> WaitForInitWaitAsync(string backendPath, CancellationToken cancellationToken = default)
    {
        using IXenStore waiter = _store.Connect(0);
        return await BackendDeviceDescription.WaitForStateAsync(waiter, backendPath, XenbusState.InitWait, Clock.Delay(BackendDeviceDescription.InitTimeout), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits for a backend state with no timeout but the token's (a test's guard).</summary>
    public async Task<bool> WaitForStateAsync(string backendPath, XenbusState state, CancellationToken cancellationToken)
    {
        using IXenStore waiter = _store.Connect(0);
        var never = new TaskCompletionSource<bool>();
        using (cancellationToken.Register(() => never.TrySetResult(true)))
        {
            return await BackendDeviceDescription.WaitForStateAsync(waiter, backendPath, state, never.Task, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The first step of <c>xl block-detach</c>: the backend is told to close (online 0, state Closing).</summary>
    public void BeginDetach(string backendPath)
    {
        XenStoreTransaction transaction = _dom0.BeginTransaction();
        _dom0.Write(backendPath + "/online", "0", transaction);
        _dom0.Write(backendPath + "/state", ((int)XenbusState.Closing).ToString(CultureInfo.InvariantCulture), transaction);
        _ = _dom0.EndTransaction(transaction);
    }

    /// <summary>
    /// <c>xl destroy</c>: every device directory of the domain removed (backend, frontend, libxl's record), then its home,
    /// then xenstored releases it (<c>@releaseDomain</c>).
    /// </summary>
    /// <remarks>
    /// The backends are found, as libxl__devices_destroy finds them, from libxl's own record under <c>/libxl/</c>, which
    /// only dom0 writes — never from the frontend directory's <c>backend</c> key, which the guest owns and could point at
    /// another guest's device (or at no valid path at all).
    /// </remarks>
    public void DestroyDomain(ushort domain)
    {
        string home = XenStorePaths.DomainPath(domain);
        string record = "/libxl/" + domain.ToString(CultureInfo.InvariantCulture) + "/device";
        foreach (string kind in _dom0.List(record) ?? [])
        {
            foreach (string device in _dom0.List(record + "/" + kind) ?? [])
            {
                if (_dom0.Read(record + "/" + kind + "/" + device + "/backend") is string backend && XenStorePaths.IsValid(backend) && backend[0] == '/')
                {
                    _ = _dom0.Remove(backend);
                }
            }
        }

        foreach (string backend in _dom0.List("/local/domain") ?? [])
        {
            foreach (string kind in _dom0.List("/local/domain/" + backend + "/backend") ?? [])
            {
                _ = _dom0.Remove("/local/domain/" + backend + "/backend/" + kind + "/" + domain.ToString(CultureInfo.InvariantCulture));
            }
        }

        _ = _dom0.Remove("/libxl/" + domain.ToString(CultureInfo.InvariantCulture));
        _ = _dom0.Remove(home);
        _store.ReleaseDomain(domain);
    }

    /// <inheritdoc/>
    public void Dispose() => _dom0.Dispose();

    private static string FrontendPath(ushort domain, uint deviceId) =>
        FormattableString.Invariant($"{XenStorePaths.DomainPath(domain)}/device/{XenstoreBackendService.VirtioDiskKind}/{deviceId}");

    private static string LibxlPath(ushort domain, uint deviceId) =>
        FormattableString.Invariant($"/libxl/{domain}/device/{XenstoreBackendService.VirtioDiskKind}/{deviceId}");
}
