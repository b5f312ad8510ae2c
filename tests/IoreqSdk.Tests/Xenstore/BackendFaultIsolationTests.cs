using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using IoreqSdk.Devices;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using NUnit.Framework;

namespace IoreqSdk.Tests.Xenstore;

/// <summary>A device whose own server stops (a fatal fault of its own) is closed alone: its guest's other devices and the other guests go on.</summary>
[TestFixture]
public sealed class BackendFaultIsolationTests
{
    private const ulong Slot0 = VirtioMmioTransport.Arm64WindowBase;
    private const ulong StopperAddress = Slot0 + 0x1000;

    [Test]
    public async Task A_device_that_stops_its_server_is_closed_and_nothing_else_is_touched()
    {
        using var rig = new BackendRig();
        SimulatedHypervisor guest = rig.AddGuest(5);
        SimulatedHypervisor other = rig.AddGuest(6);
        rig.StartService(new StopperFactory());
        string disk = rig.Toolstack.AddVirtioDisk(5, rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        string otherDisk = rig.Toolstack.AddVirtioDisk(6, rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        string stopper = rig.Toolstack.AddSdkDevice(5, 7, StopperFactory.Name, new Dictionary<string, string>());
        foreach (string path in new[] { disk, otherDisk, stopper })
        {
            Assert.That(await rig.Toolstack.WaitForInitWaitAsync(path, rig.Guard), Is.True, path);
        }

        // The guest's write makes the device stop its own server, as a fatal device fault does.
        guest.Vcpu(0).WriteMmio(StopperAddress, 4, 1);
        Assert.That(await rig.Until(stopper, XenbusState.Closed), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(await rig.UntilLogged("closed stopper: its ioreq server stopped"), Is.True);
            Assert.That(BackendRig.ReadRegister(guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "the guest's disk, on its own server, answers");
            Assert.That(BackendRig.ReadRegister(other, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "the other guest's disk answers");
            Assert.That(rig.Store.Connect(0).Read(disk + "/state"), Is.EqualTo("2"));
            Assert.That(rig.Service!.Devices, Has.Count.EqualTo(2));
        }
    }

    /// <summary>A register whose write stops the server it is on.</summary>
    private sealed class StopperFactory : IBackendDeviceFactory
    {
        public const string Name = "stopper";

        public string Type => Name;

        public IDisposable? Create(BackendDeviceRequest request)
        {
            var device = new RegisterFile(RegionKind.Mmio, 0x1000, StopperAddress);
            IoreqSdk.Server.IoreqServer server = request.Server;
            device.OnWrite = (_, _) => server.Stop();
            server.AddDevice(device);
            return null;
        }
    }
}
