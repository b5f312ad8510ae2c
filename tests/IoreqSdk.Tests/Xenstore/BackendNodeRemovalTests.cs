using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using IoreqSdk.Simulation.Store;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using NUnit.Framework;

namespace IoreqSdk.Tests.Xenstore;

/// <summary>
/// A backend node the toolstack removes while the service builds its device: nothing the service writes afterwards
/// may bring it back (a write to a removed path re-creates it in xenstore, and the teardown would leave it, empty).
/// </summary>
[TestFixture]
public sealed class BackendNodeRemovalTests
{
    [Test]
    public async Task A_node_removed_while_its_device_is_built_is_not_recreated_and_the_device_is_not_listed()
    {
        using var rig = new BackendRig();
        rig.AddGuest(5);
        rig.StartService(new RemovingFactory(rig.Store));
        string path = rig.Toolstack.AddSdkDevice(5, 7, RemovingFactory.Name, new Dictionary<string, string>());

        Assert.That(await rig.UntilLogged("its backend node was removed while it was being served"), Is.True, string.Join("\n", rig.Logs.Lines));
        using IXenStore dom0 = rig.Store.Connect(0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(dom0.Read(path), Is.Null, "the node stays removed");
            Assert.That(dom0.List(path), Is.Null);
            Assert.That(rig.Service!.Devices, Is.Empty);
        }
    }

    /// <summary>Removes its own backend node while the service builds the device, as a toolstack racing the backend may.</summary>
    private sealed class RemovingFactory(SimulatedXenStore store) : IBackendDeviceFactory
    {
        public const string Name = "remover";

        public string Type => Name;

        public IDisposable? Create(BackendDeviceRequest request)
        {
            using IXenStore dom0 = store.Connect(0);
            _ = dom0.Remove(request.BackendPath);
            return null;
        }
    }
}
