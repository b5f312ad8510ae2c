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
}
