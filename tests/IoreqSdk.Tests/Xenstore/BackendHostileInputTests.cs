using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using NUnit.Framework;

namespace IoreqSdk.Tests.Xenstore;

/// <summary>
/// Hostile and odd input from xenstore (the list): each bad device gets a clear log line and state Closed, and
/// a device already served on the same guest keeps answering; the service keeps running.
/// </summary>
[TestFixture]
public sealed class BackendHostileInputTests
{
    private const ulong Slot0 = VirtioMmioTransport.Arm64WindowBase;
    private const ulong Slot1 = Slot0 + VirtioMmioTransport.Size;
    private BackendRig _rig = null!;
    private SimulatedHypervisor _guest = null!;

    [SetUp]
    public async Task SetUp()
    {
        _rig = new BackendRig();
        _guest = _rig.AddGuest(5);
        _rig.StartService();
        string good = _rig.Toolstack.AddVirtioDisk(5, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(good, _rig.Guard), Is.True);
    }

    [TearDown]
    public void TearDown() => _rig.Dispose();

    private static IEnumerable<TestCaseData> BadSdkDevices()
    {
        Dictionary<string, string> Disk(string? path = "IMAGE") => path is null
            ? new() { ["transport"] = "mmio", ["base"] = Slot1.ToString(System.Globalization.CultureInfo.InvariantCulture), ["irq"] = "34", ["mode"] = "w" }
            : new() { ["transport"] = "mmio", ["base"] = Slot1.ToString(System.Globalization.CultureInfo.InvariantCulture), ["irq"] = "34", ["mode"] = "w", ["params"] = path };

        yield return new TestCaseData("virtio-blk", Disk(null), "the key 'params' is missing").SetName("missing params");
        yield return new TestCaseData("virtio-blk", With(Disk(), "base", "0x12zz"), "the key 'base' is '0x12zz', not a number").SetName("malformed base");
        yield return new TestCaseData("virtio-blk", With(Disk(), "base", "0x3000000"), "inside Xen's virtio-mmio window").SetName("base outside the window");
        yield return new TestCaseData("virtio-blk", With(Disk(), "base", (Slot1 + 4).ToString(System.Globalization.CultureInfo.InvariantCulture)), "aligned slot").SetName("base not slot-aligned");
        yield return new TestCaseData("virtio-blk", With(Disk(), "irq", "44"), "SPIs Xen reserves for virtio-mmio (33-43)").SetName("irq above the range");
        yield return new TestCaseData("virtio-blk", With(Disk(), "irq", "32"), "SPIs Xen reserves").SetName("irq below the range");
        yield return new TestCaseData("virtio-blk", With(Disk(), "mode", "rw"), "mode 'rw' is not w or r").SetName("malformed mode");
        yield return new TestCaseData("virtio-blk", Disk("/nonexistent/disk.img"), "does not exist or is not a regular file").SetName("params missing");
        yield return new TestCaseData("virtio-blk", Disk(Path.GetTempPath()), "does not exist or is not a regular file").SetName("params a directory");
        yield return new TestCaseData("virtio-blk", With(Disk(), "transport", "carrier-pigeon"), "transport 'carrier-pigeon' is not mmio or pci").SetName("unknown transport");
        yield return new TestCaseData("virtio-gpu", Disk(), "no device type 'virtio-gpu' is known").SetName("unknown type");
        yield return new TestCaseData("virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "0000:01:02.0" }, "bus 00").SetName("pci bdf on another bus");
        yield return new TestCaseData("virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "zz" }, "is not ssss:bb:dd.f").SetName("malformed bdf");
    }

    [TestCaseSource(nameof(BadSdkDevices))]
    public async Task A_bad_device_is_refused_with_a_log_line_and_Closed_and_the_served_one_keeps_running(string type, Dictionary<string, string> keys, string logged)
    {
        if (keys.TryGetValue("params", out string? image) && image == "IMAGE")
        {
            keys["params"] = _rig.Image();
        }

        string bad = _rig.Toolstack.AddSdkDevice(5, 9, type, keys);
        await ExpectRefused(bad, logged);
    }

    [Test]
    public async Task A_frontend_id_that_names_no_domain_is_refused()
    {
        // A device a script wrote for domain 42, which the toolstack never built (no /local/domain/42)...
        string bad = _rig.Toolstack.AddSdkDevice(42, 1, "virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "0000:00:05.0" });
        await ExpectRefused(bad, "frontend domain 42 does not exist (no /local/domain/42)");

        // ...and one whose xenstore home exists but which Xen does not know: the hypervisor's ESRCH is the log line.
        string unknown = _rig.Toolstack.AddVirtioDisk(43, _rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        await ExpectRefused(unknown, "domain 43 does not exist");
    }

    [Test]
    public async Task A_frontend_id_that_disagrees_with_the_directory_is_refused()
    {
        string bad = _rig.Toolstack.AddSdkDevice(5, 9, "virtio-rng", new Dictionary<string, string> { ["transport"] = "mmio", ["base"] = Slot1.ToString(System.Globalization.CultureInfo.InvariantCulture), ["irq"] = "34", ["frontend-id"] = "0" });
        await ExpectRefused(bad, "frontend-id '0' does not match the directory's domain 5");
    }

    [Test]
    public async Task A_state_that_is_not_a_xenbus_state_is_refused()
    {
        string bad = _rig.Toolstack.AddSdkDevice(5, 9, "virtio-rng", new Dictionary<string, string> { ["transport"] = "mmio", ["base"] = Slot1.ToString(System.Globalization.CultureInfo.InvariantCulture), ["irq"] = "34" });
        _ = await _rig.Toolstack.WaitForInitWaitAsync(bad, _rig.Guard);
        await ExpectNothingBroken();

        string odd = _rig.Toolstack.AddSdkDevice(5, 10, "virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "0000:00:05.0" });
        using IXenStore dom0 = _rig.Store.Connect(0);
        dom0.Write(odd + "/state", "banana");
        Assert.That(await _rig.Until(odd, XenbusState.Closed), Is.True);
        Assert.That(await _rig.UntilLogged("its state 'banana' is not a xenbus state"), Is.True);
    }

    [Test]
    public async Task A_virtio_mmio_device_for_an_x86_guest_is_refused()
    {
        _rig.AddGuest(6, GuestArchitecture.X86);
        string bad = _rig.Toolstack.AddSdkDevice(6, 1, "virtio-rng", new Dictionary<string, string> { ["transport"] = "mmio", ["base"] = Slot0.ToString(System.Globalization.CultureInfo.InvariantCulture), ["irq"] = "33" });
        await ExpectRefused(bad, "virtio-mmio devices are served to Arm64 guests");
    }

    [Test]
    public async Task A_virtio_pci_device_on_a_segment_an_x86_guest_cannot_reach_is_refused_as_bad_input()
    {
        // Found by the xenstore fuzz target: the host bridge's own argument check reached the service, which logged
        // the device as refused "for a programming error".
        _rig.AddGuest(6, GuestArchitecture.X86);
        string bad = _rig.Toolstack.AddSdkDevice(6, 1, "virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "0001:00:05.0" });
        await ExpectRefused(bad, "bdf: An x86 guest reaches PCI segment 0 only");
        Assert.That(_rig.Logs.Lines, Has.None.Contains("programming error"));
    }

    [Test]
    public async Task A_node_that_appears_and_disappears_before_it_is_served_leaves_nothing_behind()
    {
        using IXenStore dom0 = _rig.Store.Connect(0);
        string fleeting = _rig.Toolstack.AddSdkDevice(5, 11, "virtio-rng", new Dictionary<string, string> { ["transport"] = "mmio", ["base"] = Slot1.ToString(System.Globalization.CultureInfo.InvariantCulture), ["irq"] = "34" });
        _ = dom0.Remove(fleeting);

        // Events are handled in order: once a later device is served, the fleeting one's events were handled.
        string later = _rig.Toolstack.AddSdkDevice(5, 12, "virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "0000:00:06.0" });
        Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(later, _rig.Guard), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(dom0.Read(fleeting), Is.Null, "no state write re-created the removed node");
            Assert.That(dom0.List(fleeting), Is.Null);
            Assert.That(_rig.Service!.Devices, Has.Count.EqualTo(2), "the first disk and the later device; nothing for the fleeting one");
        }

        await ExpectNothingBroken();
    }

    [Test]
    public async Task A_flood_of_devices_beyond_the_bound_is_refused_one_by_one()
    {
        // The rig's service has the default bound of 64; 8 ioreq servers per simulated guest is the hypervisor's own
        // bound, which the 9th device on one guest meets: refused like any other failure, the others go on.
        for (uint id = 20; id < 27; id++)
        {
            string rng = _rig.Toolstack.AddSdkDevice(5, id, "virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = $"0000:00:{id - 18:x2}.0" });
            Assert.That(await _rig.Toolstack.WaitForInitWaitAsync(rng, _rig.Guard), Is.True);
        }

        string ninth = _rig.Toolstack.AddSdkDevice(5, 27, "virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "0000:00:1f.0" });
        await ExpectRefused(ninth, "refused");
    }

    private async Task ExpectRefused(string backend, string logged)
    {
        Assert.That(await _rig.Until(backend, XenbusState.Closed), Is.True);
        Assert.That(await _rig.UntilLogged(logged), Is.True, "expected a log line containing: " + logged + "\n" + string.Join("\n", _rig.Logs.Lines));
        await ExpectNothingBroken();
    }

    private Task ExpectNothingBroken()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(BackendRig.ReadRegister(_guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "the served disk still answers");
            Assert.That(_rig.Running!.IsCompleted, Is.False, "the service runs on");
        }

        return Task.CompletedTask;
    }

    private static Dictionary<string, string> With(Dictionary<string, string> keys, string key, string value)
    {
        keys[key] = value;
        return keys;
    }
}
