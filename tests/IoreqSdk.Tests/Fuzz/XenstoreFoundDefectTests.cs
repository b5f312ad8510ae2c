using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using IoreqSdk.Fuzzing;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Store;
using IoreqSdk.Storage;
using IoreqSdk.Tests.Xenstore;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using NUnit.Framework;

namespace IoreqSdk.Tests.Fuzz;

/// <summary>
/// The defects the xenstore fuzz target found in the backend service, the image file and the simulated toolstack, each
/// pinned by a direct test (the inputs themselves replay from Fuzz/Corpus/xenstore).
/// </summary>
[TestFixture]
public sealed class XenstoreFoundDefectTests
{
    private const ulong Slot0 = VirtioMmioTransport.Arm64WindowBase;
    private const ulong Slot1 = VirtioMmioTransport.Arm64WindowBase + VirtioMmioTransport.Size;
    private BackendRig _rig = null!;

    [SetUp]
    public void SetUp() => _rig = new BackendRig();

    [TearDown]
    public void TearDown() => _rig.Dispose();

    [Test]
    public void The_simulated_toolstacks_destroy_finds_backends_by_libxls_record_not_by_the_guests_frontend_key()
    {
        // Found by the xenstore target: xl destroy followed the frontend directory's backend key, which the guest owns,
        // so a guest could make dom0 remove another guest's device (or throw on a malformed path).
        _rig.Toolstack.CreateDomain(5);
        _rig.Toolstack.CreateDomain(6);
        string five = _rig.Toolstack.AddVirtioDisk(5, "/image", Slot0, VirtioMmioTransport.Arm64FirstSpi);
        string six = _rig.Toolstack.AddVirtioDisk(6, "/image", Slot0, VirtioMmioTransport.Arm64FirstSpi);
        using (IXenStore guest = _rig.Store.Connect(5))
        {
            guest.Write("/local/domain/5/device/virtio_disk/51712/backend", six);
        }

        _rig.Toolstack.DestroyDomain(5);
        using IXenStore dom0 = _rig.Store.Connect(0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(dom0.Read(six + "/state"), Is.EqualTo("1"), "the other guest's device is left alone");
            Assert.That(dom0.List(five), Is.Null, "the destroyed guest's own device is gone");
        }

        using (IXenStore guest = _rig.Store.Connect(6))
        {
            guest.Write("/local/domain/6/device/virtio_disk/51712/backend", "not a path");
        }

        Assert.That(() => _rig.Toolstack.DestroyDomain(6), Throws.Nothing, "a malformed key in the guest's directory does not stop the destroy");
        Assert.That(dom0.List(six), Is.Null);
    }

    [Test]
    public void An_image_that_is_a_FIFO_is_refused_at_once_not_waited_on()
    {
        // Found by the xenstore target: params naming a FIFO hung the backend service's loop for good, in the open of
        // the disk's probe (a FileStream's open(2) of a FIFO waits for a writer).
        string fifo = XenstoreVocabulary.Fifo;
        Task<Exception?> open = Task.Run<Exception?>(() =>
        {
            try
            {
                RawImageFile.Open(fifo, readOnly: true).Dispose();
                return null;
            }
            catch (IOException e)
            {
                return e;
            }
        });

        Assert.That(open.Wait(TimeSpan.FromSeconds(30)), Is.True, "the open returned (before the fix it never did)");
        Assert.That(open.Result, Is.TypeOf<IOException>().With.Message.Contains("does not seek"));
    }

    [Test]
    public void An_image_path_that_holds_a_NUL_is_refused_not_cut_short()
    {
        // open(2) would stop at the NUL and open the prefix: here a real image, which must not be served in its place.
        string image = _rig.Image(4096);
        Assert.That(() => RawImageFile.Open(image + "\0.other", readOnly: true), Throws.ArgumentException.With.Message.Contains("NUL"));
    }

    [Test]
    public void An_image_that_is_a_directory_or_missing_is_refused_and_a_regular_file_opens()
    {
        string image = _rig.Image(4096);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => RawImageFile.Open(Path.GetTempPath(), readOnly: true), Throws.InstanceOf<IOException>().With.Message.Contains("directory"));
            Assert.That(() => RawImageFile.Open(Path.GetTempPath(), readOnly: false), Throws.InstanceOf<IOException>());
            Assert.That(() => RawImageFile.Open(image + ".missing", readOnly: true), Throws.TypeOf<FileNotFoundException>());
        }

        using RawImageFile file = RawImageFile.Open(image, readOnly: false);
        Assert.That(file.Length, Is.EqualTo(4096));
    }

    [Test]
    public async Task A_disk_on_a_FIFO_is_refused_and_the_service_goes_on_serving()
    {
        _rig.AddGuest(5);
        _rig.StartService();
        string fifo = _rig.Toolstack.AddSdkDevice(5, 0, "virtio-blk", Rng(0, new() { ["params"] = XenstoreVocabulary.Fifo, ["mode"] = "r" }));
        string rng = _rig.Toolstack.AddSdkDevice(5, 1, "virtio-rng", Rng(1, []));

        Assert.That(await _rig.Until(fifo, XenbusState.Closed), Is.True);
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(rng, _rig.Guard), Is.True, "the next device is served: the loop did not hang");
    }

    [TestCase("/", TestName = "The root")]
    [TestCase("@releaseDomain", TestName = "A special watch path")]
    [TestCase(null, TestName = "A path with no room for /state")]
    public async Task A_frontend_key_naming_no_readable_state_node_is_ignored_and_the_device_served(string? frontend)
    {
        // Found by the xenstore target: the key passed the path check, but "<frontend>/state" is malformed, so the
        // first read of it threw after the device was in the service's table: refused (state Closed, DeviceClosed)
        // while its ioreq server ran on.
        frontend ??= "/" + new string('a', XenStorePaths.MaxAbsolutePathLength - 1);
        SimulatedHypervisor guest = _rig.AddGuest(5);
        XenstoreBackendService service = _rig.StartService();
        var first = new TaskCompletionSource<(string What, BackendDeviceStatus Device)>(TaskCreationOptions.RunContinuationsAsynchronously);
        service.DeviceServed += (_, e) => first.TrySetResult(("served", e.Device));
        service.DeviceClosed += (_, e) => first.TrySetResult(("closed", e.Device));
        _ = _rig.Toolstack.AddSdkDevice(5, 0, "virtio-rng", Rng(0, new() { ["frontend"] = frontend }));

        (string what, BackendDeviceStatus device) = await first.Task.WaitAsync(_rig.Guard);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(what, Is.EqualTo("served"), device.ToString());
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic));
            Assert.That(_rig.Hypervisors.Held(5), Is.EqualTo(1));
        }
    }

    [Test]
    public async Task A_stale_ioreq_server_key_naming_a_server_the_service_runs_leaves_that_server_alone()
    {
        // Found by the xenstore target: a device found in InitWait (a previous backend's) had the server its
        // ioreq-server key names destroyed — even when that id was another device's live server now, which then lost
        // its device under it (the id went to the new device).
        SimulatedHypervisor guest = _rig.AddGuest(5);
        XenstoreBackendService service = _rig.StartService();
        string first = _rig.Toolstack.AddSdkDevice(5, 0, "virtio-rng", Rng(0, []));
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(first, _rig.Guard), Is.True);
        ushort live = service.Devices.Single().IoreqServer!.Value;

        Dictionary<string, string> stale = Rng(1, new() { ["frontend-id"] = "5", ["type"] = "virtio-rng", ["online"] = "1", ["state"] = "2" });
        stale[XenstoreBackendService.IoreqServerKey] = live.ToString(CultureInfo.InvariantCulture);
        using (IXenStore dom0 = _rig.Store.Connect(0))
        {
            BackendDeviceDescription.WriteDevice(dom0, BackendDeviceDescription.BackendPath(0, XenstoreBackendService.SdkKind, 5, 1), [new XenStorePermissionEntry(0, XenStoreAccess.None), new XenStorePermissionEntry(5, XenStoreAccess.Read)], stale);
        }

        while (service.Devices.Count < 2)
        {
            await Task.Delay(5, _rig.Guard);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(service.Devices.Select(d => d.IoreqServer), Is.Unique, "each device on a server of its own");
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "the first device still reaches its guest");
            Assert.That(BackendRig.ReadRegister(guest, Slot1, 0), Is.EqualTo(BackendRig.MmioMagic));
        }
    }

    /// <summary>An SDK-namespace device on virtio-mmio slot <paramref name="slot"/>, with <paramref name="extra"/> keys.</summary>
    private static Dictionary<string, string> Rng(int slot, Dictionary<string, string> extra)
    {
        var keys = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["transport"] = "mmio",
            ["base"] = "0x" + (Slot0 + ((ulong)slot * VirtioMmioTransport.Size)).ToString("x", CultureInfo.InvariantCulture),
            ["irq"] = (VirtioMmioTransport.Arm64FirstSpi + (uint)slot).ToString(CultureInfo.InvariantCulture),
        };
        foreach (KeyValuePair<string, string> key in extra)
        {
            keys[key.Key] = key.Value;
        }

        return keys;
    }
}
