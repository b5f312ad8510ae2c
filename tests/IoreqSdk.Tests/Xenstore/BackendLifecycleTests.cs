using System;
using System.Linq;
using System.Threading.Tasks;
using IoreqSdk.Simulation;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using NUnit.Framework;

namespace IoreqSdk.Tests.Xenstore;

/// <summary>
/// The backend service's life cycle on the simulated xenstore and simulated Xen, driven as Xen 4.17's toolstack drives
/// it: a guest created with a virtio disk, served (InitWait within libxl's timeout), destroyed; several guests at once;
/// the backend restarted while its guests run; a detach.
/// </summary>
[TestFixture]
public sealed class BackendLifecycleTests
{
    private const ulong Slot0 = VirtioMmioTransport.Arm64WindowBase;
    private BackendRig _rig = null!;

    [SetUp]
    public void SetUp() => _rig = new BackendRig();

    [TearDown]
    public void TearDown() => _rig.Dispose();

    [Test]
    public async Task A_guests_virtio_disk_is_served_at_its_slot_reported_InitWait_and_torn_down_when_the_guest_is_destroyed()
    {
        SimulatedHypervisor guest = _rig.AddGuest(5);
        _rig.StartService();
        string backend = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);

        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard), Is.True, "InitWait came before libxl's 10 s (the clock never moved)");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "the guest reaches a virtio-mmio device at base");
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 8), Is.EqualTo(2), "a block device");
            Assert.That(_rig.Service!.Devices, Has.Count.EqualTo(1));
            Assert.That(_rig.Service.Devices[0].State, Is.EqualTo(XenbusState.InitWait), "a virtio frontend never connects over xenbus: the backend stays in InitWait");
            Assert.That(_rig.Store.Connect(0).Read(backend + "/" + XenstoreBackendService.IoreqServerKey), Is.EqualTo(_rig.Service.Devices[0].IoreqServer!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        _rig.Toolstack.DestroyDomain(5);
        await _rig.UntilNoDeviceOf(5);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_rig.Store.Connect(0).Read(backend + "/state"), Is.Null, "the removed node is not re-created by a state write");
            Assert.That(await _rig.UntilLogged("domain 5 device 51712: closed virtio_disk"), Is.True, string.Join("\n", _rig.Logs.Lines));
        }
    }

    [Test]
    public async Task With_two_loop_threads_a_second_vCPUs_requests_come_to_a_request_loop_and_the_teardown_says_so()
    {
        SimulatedHypervisor guest = _rig.AddGuest(5);
        _rig.LoopThreads = 2;
        _rig.StartService();
        string backend = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard), Is.True);

        // virtio-blk declares no region thread-safe: vCPU 1's reads reach the request loop, which hands them over.
        uint magic = (uint)guest.Vcpu(1).ReadMmio(Slot0, 4);
        uint type = (uint)guest.Vcpu(1).ReadMmio(Slot0 + 8, 4);
        uint version = (uint)guest.Vcpu(0).ReadMmio(Slot0 + 4, 4);
        _rig.Toolstack.DestroyDomain(5);
        await _rig.UntilNoDeviceOf(5);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(magic, Is.EqualTo(BackendRig.MmioMagic));
            Assert.That(type, Is.EqualTo(2));
            Assert.That(version, Is.EqualTo(2));
            Assert.That(await _rig.UntilLogged("domain 5 device 51712: its ioreq server answered 3 requests with 2 loop thread(s) (2 came to a request loop and were handed to the event loop)"), Is.True, string.Join("\n", _rig.Logs.Lines));
        }
    }

    [TestCase(0)]
    [TestCase(IoreqSdk.Server.IoreqServerOptions.MaxLoopThreads + 1)]
    public void A_loop_thread_count_no_server_can_run_is_refused_where_the_service_is_built(int loops)
    {
        var options = new XenstoreBackendOptions { LoopThreads = loops };
        Assert.That(() => new XenstoreBackendService(_rig.Store.Connect(0), _rig.Hypervisors, options),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains($"LoopThreads: a device's server runs 1 to 128 loop threads, not {loops}"));
    }

    [Test]
    public async Task Without_a_backend_libxls_wait_times_out_after_10_s_on_the_toolstacks_clock()
    {
        _rig.AddGuest(5);
        string backend = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Task<bool> wait = _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard);

        _rig.Clock.Advance(TimeSpan.FromSeconds(9.9));
        await Task.Yield();
        Assert.That(wait.IsCompleted, Is.False, "9.9 s: still waiting");
        _rig.Clock.Advance(TimeSpan.FromSeconds(0.1));
        Assert.That(await wait, Is.False, "10 s: libxl gives up on the device");
    }

    [Test]
    public async Task Several_guests_are_served_at_once_each_on_its_own_ioreq_server_and_one_ending_leaves_the_others()
    {
        SimulatedHypervisor[] guests = [_rig.AddGuest(5), _rig.AddGuest(6), _rig.AddGuest(7)];
        _rig.StartService();
        string[] backends = guests.Select(g => _rig.Toolstack.AddVirtioDisk(g.Domain, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi)).ToArray();
        string rng = _rig.Toolstack.AddSdkDevice(6, 1, "virtio-rng", new System.Collections.Generic.Dictionary<string, string>
        {
            ["transport"] = "mmio",
            ["base"] = "0x" + (Slot0 + VirtioMmioTransport.Size).ToString("x", System.Globalization.CultureInfo.InvariantCulture),
            ["irq"] = (VirtioMmioTransport.Arm64FirstSpi + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

        foreach (string backend in backends.Append(rng))
        {
            Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard), Is.True, backend);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_rig.Service!.Devices.Select(d => (d.FrontendDomain, d.DeviceId)), Is.EquivalentTo(new[] { ((ushort)5, 51712u), ((ushort)6, 51712u), ((ushort)7, 51712u), ((ushort)6, 1u) }));
            Assert.That(BackendRig.ReadRegister(guests[1], Slot0 + VirtioMmioTransport.Size, 8), Is.EqualTo(4), "guest 6's second slot is its entropy device");
            Assert.That(_rig.Hypervisors.Held(6), Is.EqualTo(2), "one server (and handle) per device");
        }

        _rig.Toolstack.DestroyDomain(6);
        await _rig.UntilNoDeviceOf(6);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(BackendRig.ReadRegister(guests[0], Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "guest 5 still served");
            Assert.That(BackendRig.ReadRegister(guests[2], Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "guest 7 still served");
            Assert.That(_rig.Service.Devices, Has.Count.EqualTo(2));
        }
    }

    [Test]
    public async Task A_restarted_backend_picks_up_the_devices_of_running_guests_from_the_initial_watch_fire()
    {
        SimulatedHypervisor guest = _rig.AddGuest(5);
        _rig.StartService();
        string backend = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard), Is.True);

        _rig.StopService();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_rig.Hypervisors.Held(5), Is.Zero, "the stop tore the device down");
            Assert.That(_rig.Store.Connect(0).Read(backend + "/state"), Is.EqualTo("2"), "and left xenstore as it was for the next backend");
        }

        var served = new TaskCompletionSource<BackendDeviceStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        XenstoreBackendService again = _rig.StartService();
        again.DeviceServed += (_, e) => served.TrySetResult(e.Device);
        BackendDeviceStatus device = await served.Task.WaitAsync(_rig.Guard);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.BackendPath, Is.EqualTo(backend));
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "served again, on a new ioreq server");
        }
    }

    [Test]
    public async Task A_detach_closes_the_device_and_the_backend_answers_Closed()
    {
        _rig.AddGuest(5);
        _rig.StartService();
        string backend = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard), Is.True);

        _rig.Toolstack.BeginDetach(backend);
        Assert.That(await _rig.Until(backend, XenbusState.Closed), Is.True);
        await _rig.UntilNoDeviceOf(5);
    }

    [Test]
    public async Task A_xenbus_frontend_that_connects_moves_the_backend_to_Connected_and_its_closing_closes_it()
    {
        _rig.AddGuest(5);
        _rig.StartService();
        IXenStore dom0 = _rig.Store.Connect(0);
        const string frontend = "/local/domain/5/device/ioreq-sdk/3";
        dom0.Write(frontend + "/state", "1");
        string backend = _rig.Toolstack.AddSdkDevice(5, 3, "virtio-rng", new System.Collections.Generic.Dictionary<string, string>
        {
            ["transport"] = "mmio",
            ["base"] = Slot0.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["irq"] = VirtioMmioTransport.Arm64FirstSpi.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["frontend"] = frontend,
        });
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard), Is.True);

        dom0.Write(frontend + "/state", "4");
        Assert.That(await _rig.Until(backend, XenbusState.Connected), Is.True);
        dom0.Write(frontend + "/state", "5");
        Assert.That(await _rig.Until(backend, XenbusState.Closed), Is.True);
        await _rig.UntilNoDeviceOf(5);
    }

    [Test]
    public async Task A_released_domain_whose_home_is_gone_ends_its_devices()
    {
        _rig.AddGuest(5);
        _rig.StartService();
        string backend = _rig.Toolstack.AddSdkDevice(5, 1, "virtio-rng", new System.Collections.Generic.Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "0000:00:05.0" });
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(backend, _rig.Guard), Is.True);

        // The domain died without the toolstack removing its devices (xl killed): only its home goes, then xenstored releases it.
        _ = _rig.Store.Connect(0).Remove("/local/domain/5");
        _rig.Store.ReleaseDomain(5);
        Assert.That(await _rig.Until(backend, XenbusState.Closed), Is.True);
        await _rig.UntilNoDeviceOf(5);
        Assert.That(await _rig.UntilLogged("domain 5 was released"), Is.True);
    }
}
