using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.Backends;
using IoreqSdk.Hosting.Xenstore;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using IoreqSdk.Tests.Xenstore;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NUnit.Framework;

namespace IoreqSdk.Tests.Hosting;

/// <summary>
/// The xenstore backend daemon on the Generic Host (issue 18): started once it watches xenstore, every device torn down
/// on the host's stop — a device stuck in a call included, its server destroyed all the same — and the application
/// stopped when the service ends by itself.
/// </summary>
[TestFixture]
public sealed class XenstoreBackendHostTests
{
    private const ulong Slot0 = VirtioMmioTransport.Arm64WindowBase;
    private const ulong BusyBase = Slot0 + 0x1000;

    [Test]
    public async Task TheHostServesTheToolstacksDiskAndItsStopTearsItDownWithTheServerDestroyed()
    {
        using var rig = new BackendRig();
        SimulatedHypervisor guest = rig.AddGuest(5);
        using IHost host = Build(rig, new()).Build();

        await host.StartAsync(rig.Guard);
        XenstoreBackendHost backend = host.Services.GetRequiredService<XenstoreBackendHost>();
        Assert.That(backend.Watching, Is.True, "the start returned with the watches placed");

        string disk = rig.Toolstack.AddVirtioDisk(5, rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await rig.Toolstack.WaitForInitWaitAsync(disk, rig.Guard), Is.True, "served within libxl's wait");
        Assert.That(BackendRig.ReadRegister(guest, Slot0, 0), Is.EqualTo(BackendRig.MmioMagic), "the guest sees its virtio disk");
        ushort id = backend.Service!.Devices.Single().IoreqServer!.Value;

        await host.StopAsync(rig.Guard);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(backend.TeardownAbandoned, Is.False);
            Assert.That(backend.StoppedByItself, Is.False);
            Assert.That(ServerExists(guest, id), Is.False, "the device's ioreq server is destroyed");
            Assert.That(rig.Hypervisors.Held(5), Is.Zero, "every device gave its hypervisor back");
            Assert.That(rig.Store.Connect(0).Read(disk + "/state"), Is.EqualTo("2"), "a stop leaves xenstore as it was, for the next backend");
        }
    }

    [Test]
    public async Task AStopWhileADevicesCallBlocksStillDestroysEveryServer([Values] bool boundByTheHostsTimeout)
    {
        using var rig = new BackendRig();
        SimulatedHypervisor guest = rig.AddGuest(5);
        SimulatedHypervisor other = rig.AddGuest(6);
        using var busy = new BusyDevice(BusyBase);
        HostApplicationBuilder builder = Build(rig, new() { ["XenstoreBackend:StopTimeout"] = boundByTheHostsTimeout ? "00:10:00" : "00:00:00.2" }, new BusyFactory(busy));
        if (boundByTheHostsTimeout)
        {
            // The host's own shutdown timeout is the shorter bound here: the teardown keeps to it.
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(200));
        }

        using IHost host = builder.Build();
        await host.StartAsync(rig.Guard);
        XenstoreBackendHost backend = host.Services.GetRequiredService<XenstoreBackendHost>();
        string stuck = rig.Toolstack.AddSdkDevice(5, 7, BusyFactory.Name, new Dictionary<string, string>());
        string disk = rig.Toolstack.AddVirtioDisk(6, rig.Image(), Slot0, VirtioMmioTransport.Arm64FirstSpi);
        Assert.That(await rig.Toolstack.WaitForInitWaitAsync(stuck, rig.Guard), Is.True);
        Assert.That(await rig.Toolstack.WaitForInitWaitAsync(disk, rig.Guard), Is.True);
        Dictionary<ushort, ushort> servers = backend.Service!.Devices.ToDictionary(d => d.FrontendDomain, d => d.IoreqServer!.Value);

        // The guest's access keeps the busy device's event loop inside it until the test lets it go.
        var access = new Thread(() => _ = guest.Vcpu(0).ReadMmio(BusyBase, 4)) { IsBackground = true };
        access.Start();
        Assert.That(busy.Entered.Wait(TimeSpan.FromSeconds(10)), Is.True, "the loop is inside the device");

        await host.StopAsync(CancellationToken.None);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(backend.TeardownAbandoned, Is.True, "the teardown could not finish");
            Assert.That(ServerExists(guest, servers[5]), Is.False, "the stuck device's server is destroyed all the same");
            Assert.That(ServerExists(other, servers[6]), Is.False, "and the other guest's");
        }

        // Once the device returns, the service's own teardown goes on and finds the servers gone, harmlessly.
        busy.Release.Set();
        Assert.That(access.Join(TimeSpan.FromSeconds(40)), Is.True);
        Assert.That(SimulatedPciGuest.WaitUntil(() => rig.Hypervisors.Held(5) == 0 && rig.Hypervisors.Held(6) == 0), Is.True, "the service finished its teardown");
    }

    [Test]
    public async Task WhenTheXenstoreConnectionClosesTheApplicationStops()
    {
        using var rig = new BackendRig();
        IXenStore connection = rig.Store.Connect(0);
        HostApplicationBuilder builder = Build(rig, new());
        builder.Services.AddSingleton(connection);   // Build's UseStore takes it
        using IHost host = builder.Build();
        await host.StartAsync(rig.Guard);
        IHostApplicationLifetime lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        Assert.That(lifetime.ApplicationStopping.IsCancellationRequested, Is.False);

        connection.Dispose();

        Assert.That(lifetime.ApplicationStopping.WaitHandle.WaitOne(TimeSpan.FromSeconds(10)), Is.True, "the application was asked to stop");
        await host.StopAsync(rig.Guard);
        Assert.That(host.Services.GetRequiredService<XenstoreBackendHost>().StoppedByItself, Is.True);
    }

    [TestCase("0")]
    [TestCase("129")]
    public void ALoopThreadCountFromConfigurationNoServerCanRunFailsTheStartNamingTheSetting(string loops)
    {
        using var rig = new BackendRig();
        using IHost host = Build(rig, new() { ["XenstoreBackend:LoopThreads"] = loops }).Build();

        Assert.That(async () => await host.StartAsync(rig.Guard), Throws.InvalidOperationException.With.Message.Contains($"XenstoreBackend:LoopThreads: {loops} is not a loop-thread count; give 1 to 128."));
    }

    [Test]
    public void AReservedBackendDomainFromConfigurationFailsTheStartNamingTheSetting()
    {
        using var rig = new BackendRig();
        using IHost host = Build(rig, new() { ["XenstoreBackend:BackendDomain"] = "32752" }).Build();

        Assert.That(async () => await host.StartAsync(rig.Guard), Throws.InvalidOperationException.With.Message.Contains("XenstoreBackend:BackendDomain: 32752 is a reserved domain id"));
    }

    [Test]
    public void ASecondBackendIsRefused()
    {
        var services = new ServiceCollection();
        services.AddXenstoreBackend();
        Assert.That(() => services.AddXenstoreBackend(), Throws.InvalidOperationException);
    }

    internal static HostApplicationBuilder Build(BackendRig rig, Dictionary<string, string?> settings, params IBackendDeviceFactory[] extra)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddXenstoreBackend(builder.Configuration.GetSection(XenstoreBackendHostOptions.SectionName))
            .UseStore(services => services.GetService<IXenStore>() ?? rig.Store.Connect(0))
            .UseHypervisors(_ => rig.Hypervisors)
            .ConfigureBackend((_, options) =>
            {
                options.AddStandardDevices();
                foreach (IBackendDeviceFactory factory in extra)
                {
                    options.Factories.Add(factory);
                }
            });
        return builder;
    }

    private static bool ServerExists(SimulatedHypervisor xen, ushort id)
    {
        try
        {
            _ = xen.GetBufferedIoreqPort(xen.Domain, id);
            return true;
        }
        catch (HypervisorException e) when (e.ErrorNumber == Errno.ENOENT)
        {
            return false;
        }
    }

    /// <summary>An SDK-namespace device whose reads block the loop (<see cref="BusyDevice"/>).</summary>
    private sealed class BusyFactory(BusyDevice busy) : IBackendDeviceFactory
    {
        public const string Name = "busy";

        public string Type => Name;

        public IDisposable? Create(BackendDeviceRequest request)
        {
            request.Server.AddDevice(busy);
            return null;
        }
    }
}

