using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using System.Linq;
using System.Threading.Tasks;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Store;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using NUnit.Framework;

namespace IoreqSdk.Tests.Xenstore;

/// <summary>
/// The backend restarted while its guests run, after a crash and after a clean stop: a stale ioreq server recorded under
/// <see cref="XenstoreBackendService.IoreqServerKey"/> is destroyed before the device is served again, and a recorded id
/// that no longer names a stale server is never destroyed (ids are reused: it may name a live server by then).
/// </summary>
[TestFixture]
public sealed class BackendRestartTests
{
    private const ulong Slot0 = VirtioMmioTransport.Arm64WindowBase;
    private const uint Xvdb = SimulatedToolstack.XvdaDeviceId + 16;
    private BackendRig _rig = null!;

    [SetUp]
    public void SetUp() => _rig = new BackendRig();

    [TearDown]
    public void TearDown() => _rig.Dispose();

    [Test]
    public async Task A_backend_restarted_after_a_crash_destroys_the_stale_ioreq_server_before_its_own_and_the_device_works_again()
    {
        SimulatedHypervisor guest = _rig.AddGuest(5);
        var crashing = new CrashingHypervisors(_rig.Hypervisors);
        var store = new CrashingStore(_rig.Store.Connect(0), crashing);
        _rig.StartService(store, crashing);
        string backend = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard), Is.True);
        ushort stale = _rig.Service!.Devices[0].IoreqServer!.Value;

        // The process dies: none of its teardown reaches Xen or xenstore, so its server stays, enabled and claiming the slot
        // (Xen keeps a domain's ioreq servers until the domain dies, whatever becomes of the process that made them), and
        // its record stays with the device's state.
        crashing.Crash();
        _rig.StopService();
        Assert.That(_rig.Store.Connect(0).Read(backend + "/" + XenstoreBackendService.IoreqServerKey), Is.EqualTo(Invariant(stale)), "the crash left its record");

        var served = new TaskCompletionSource<BackendDeviceStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        XenstoreBackendService again = _rig.StartService();
        again.DeviceServed += (_, e) => served.TrySetResult(e.Device);
        BackendDeviceStatus device = await served.Task.WaitAsync(_rig.Guard);
        using (Assert.EnterMultipleScope())
        {
            // Xen (and the simulation) gives a new server the lowest free slot: the stale one's, only if it was destroyed first.
            Assert.That(device.IoreqServer, Is.EqualTo(stale), "the stale server was destroyed before the new one was created");
            Assert.That(_rig.Logs.Contains(FormattableString.Invariant($"domain 5: destroyed ioreq server {stale} a previous backend left")), Is.True, string.Join("\n", _rig.Logs.Lines));
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "the guest reaches the device again");
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 8), Is.EqualTo(2), "a block device");
            Assert.That(_rig.Store.Connect(0).Read(backend + "/" + XenstoreBackendService.IoreqServerKey), Is.EqualTo(Invariant(stale)), "the new server is recorded");
        }
    }

    [Test]
    public async Task A_clean_stop_removes_the_ioreq_server_record_and_leaves_the_state_for_the_next_backend()
    {
        _rig.AddGuest(5);
        _rig.StartService();
        string backend = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard), Is.True);

        _rig.StopService();
        using (Assert.EnterMultipleScope())
        {
            // The server it named is destroyed: an id left behind would name whatever server Xen gives that slot next.
            Assert.That(_rig.Store.Connect(0).Read(backend + "/" + XenstoreBackendService.IoreqServerKey), Is.Null);
            Assert.That(_rig.Store.Connect(0).Read(backend + "/state"), Is.EqualTo("2"));
        }
    }

    [Test]
    public async Task A_restarted_backend_keeps_every_device_when_the_old_ids_come_back_in_another_order()
    {
        SimulatedHypervisor guest = _rig.AddGuest(5);
        _rig.StartService();

        // xvdb first (server 0), then xvda (server 1); a restart scans xvda first, and its new server takes slot 0.
        string xvdb = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0 + VirtioMmioTransport.Size, VirtioMmioTransport.Arm64FirstSpi + 1, deviceId: Xvdb, vdev: "xvdb");
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(xvdb, _rig.Guard), Is.True);
        string xvda = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(xvda, _rig.Guard), Is.True);
        _rig.StopService();

        XenstoreBackendService again = _rig.StartService();
        await UntilServed(again, 2);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(again.Devices.Select(d => d.BackendPath), Is.EquivalentTo(new[] { xvda, xvdb }), string.Join("\n", _rig.Logs.Lines));
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "xvda still served");
            Assert.That(BackendRig.ReadRegister(guest, Slot0 + VirtioMmioTransport.Size, 0), Is.EqualTo(BackendRig.MmioMagic), "xvdb served");
            Assert.That(_rig.Logs.Contains("destroyed ioreq server"), Is.False, "nothing stale was left to destroy");
        }
    }

    [Test]
    public async Task A_record_that_names_a_server_the_backend_now_runs_for_another_device_is_not_destroyed()
    {
        SimulatedHypervisor guest = _rig.AddGuest(5);
        _rig.StartService();
        string xvda = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(xvda, _rig.Guard), Is.True);
        ushort live = _rig.Service!.Devices[0].IoreqServer!.Value;

        // A device a previous backend served (state InitWait) whose record names a server that is gone, its slot since
        // given to xvda's server: a backend that died between destroying its server and removing the record leaves this.
        string xvdb = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0 + VirtioMmioTransport.Size, VirtioMmioTransport.Arm64FirstSpi + 1, deviceId: Xvdb, vdev: "xvdb");
        using (IXenStore dom0 = _rig.Store.Connect(0))
        {
            XenStoreTransaction transaction = dom0.BeginTransaction();
            dom0.Write(xvdb + "/state", "2", transaction);
            dom0.Write(xvdb + "/" + XenstoreBackendService.IoreqServerKey, Invariant(live), transaction);
            Assert.That(dom0.EndTransaction(transaction), Is.True);
        }

        await UntilServed(_rig.Service, 2);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_rig.Service.Devices.Select(d => d.BackendPath), Is.EquivalentTo(new[] { xvda, xvdb }), string.Join("\n", _rig.Logs.Lines));
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "xvda's server was not destroyed");
            Assert.That(_rig.Store.Connect(0).Read(xvda + "/state"), Is.EqualTo("2"));
        }
    }

    private async Task UntilServed(XenstoreBackendService service, int count)
    {
        while (service.Devices.Count < count)
        {
            _rig.Guard.ThrowIfCancellationRequested();
            await Task.Delay(5, _rig.Guard);
        }
    }

    private static string Invariant(ushort value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>The simulated guests' hypervisors, whose calls that change Xen's state stop reaching it once <see cref="Crash"/> is called.</summary>
    private sealed class CrashingHypervisors(SimulatedBackendHypervisors inner) : IBackendHypervisors
    {
        private volatile bool _crashed;

        /// <summary>Whether the process is dead.</summary>
        public bool Crashed => _crashed;

        /// <summary>From now on the process is dead: it tears nothing down in Xen or xenstore (its fds closing unmaps and unbinds, as the kernel does).</summary>
        public void Crash() => _crashed = true;

        public IHypervisor Acquire(ushort frontendDomain) => new Crashing(inner.Acquire(frontendDomain), this);

        public void Release(ushort frontendDomain, IHypervisor hypervisor) => inner.Release(frontendDomain, ((Crashing)hypervisor).Inner);

        private sealed class Crashing(IHypervisor inner, CrashingHypervisors owner) : IHypervisor
        {
            public IHypervisor Inner => inner;

            public GuestArchitecture Architecture => inner.Architecture;

            private bool Dead => owner.Crashed;

            public ushort CreateIoreqServer(ushort domain, BufferedIoreqMode mode) => inner.CreateIoreqServer(domain, mode);

            public IoreqServerPages AcquireIoreqServerPages(ushort domain, ushort server, bool buffered) => inner.AcquireIoreqServerPages(domain, server, buffered);

            public uint GetBufferedIoreqPort(ushort domain, ushort server) => inner.GetBufferedIoreqPort(domain, server);

            public void MapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end) => inner.MapIoRange(domain, server, type, start, end);

            public void UnmapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end)
            {
                if (!Dead)
                {
                    inner.UnmapIoRange(domain, server, type, start, end);
                }
            }

            public void SetIoreqServerState(ushort domain, ushort server, bool enabled)
            {
                if (!Dead)
                {
                    inner.SetIoreqServerState(domain, server, enabled);
                }
            }

            public void DestroyIoreqServer(ushort domain, ushort server)
            {
                if (!Dead)
                {
                    inner.DestroyIoreqServer(domain, server);
                }
            }

            public int GetVcpuCount(ushort domain) => inner.GetVcpuCount(domain);

            public IEventChannel OpenEventChannel() => inner.OpenEventChannel();

            public void SetPciIntxLevel(ushort domain, PciSbdf device, int intx, bool asserted) => inner.SetPciIntxLevel(domain, device, intx, asserted);

            public void SetIsaIrqLevel(ushort domain, int irq, bool asserted) => inner.SetIsaIrqLevel(domain, irq, asserted);

            public void SetIrqLevel(ushort domain, uint irq, bool asserted) => inner.SetIrqLevel(domain, irq, asserted);

            public void InjectMsi(ushort domain, ulong address, uint data) => inner.InjectMsi(domain, address, data);

            public void Restrict(ushort domain) => inner.Restrict(domain);

            public IMappedPages MapGuestFrames(ushort domain, ulong firstFrame, int count, bool writable) => inner.MapGuestFrames(domain, firstFrame, count, writable);

            // The simulated guest outlives every device model that holds it: the rig disposes it.
            public void Dispose()
            {
            }
        }
    }

    /// <summary>A dom0 connection whose changes stop reaching xenstore once the process is dead (reads and watches go on, harmlessly).</summary>
    private sealed class CrashingStore(IXenStore inner, CrashingHypervisors process) : IXenStore
    {
        public string? Read(string path, XenStoreTransaction transaction = default) => inner.Read(path, transaction);

        public void Write(string path, string value, XenStoreTransaction transaction = default)
        {
            if (!process.Crashed)
            {
                inner.Write(path, value, transaction);
            }
        }

        public bool Remove(string path, XenStoreTransaction transaction = default) => !process.Crashed && inner.Remove(path, transaction);

        public IReadOnlyList<string>? List(string path, XenStoreTransaction transaction = default) => inner.List(path, transaction);

        public IReadOnlyList<XenStorePermissionEntry>? GetPermissions(string path, XenStoreTransaction transaction = default) => inner.GetPermissions(path, transaction);

        public void SetPermissions(string path, IReadOnlyList<XenStorePermissionEntry> permissions, XenStoreTransaction transaction = default)
        {
            if (!process.Crashed)
            {
                inner.SetPermissions(path, permissions, transaction);
            }
        }

        public XenStoreTransaction BeginTransaction() => inner.BeginTransaction();

        public bool EndTransaction(XenStoreTransaction transaction, bool abort = false) => inner.EndTransaction(transaction, abort || process.Crashed);

        public void Watch(string path, string token) => inner.Watch(path, token);

        public void Unwatch(string path, string token) => inner.Unwatch(path, token);

        public Task<XenStoreWatchEvent> ReadWatchAsync(CancellationToken cancellationToken) => inner.ReadWatchAsync(cancellationToken);

        public string GetDomainPath(ushort domain) => inner.GetDomainPath(domain);

        public void Dispose() => inner.Dispose();
    }
}
