using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices;
using IoreqSdk.Hosting;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Docs;
using IoreqSdk.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NUnit.Framework;

namespace IoreqSdk.Tests.Hosting;

/// <summary>
/// IoreqSdk.Hosting (issue 18): the Generic Host starts the server and serves its devices, its shutdown always ends with
/// the ioreq server destroyed — a device stuck in a call included — and the application stops when the guest is gone.
/// </summary>
[TestFixture]
public sealed class IoreqServerHostTests
{
    private const ulong DeviceBase = 0xFE00_0000;

    [Test]
    public async Task TheHostServesTheDeviceOnTheSimulatedGuestAndItsStopDestroysTheServer([Values] GuestArchitecture architecture)
    {
        HostApplicationBuilder builder = Builder(new()
        {
            ["Ioreq:Mode"] = "Simulated",
            ["Ioreq:Platform"] = architecture == GuestArchitecture.Arm64 ? "arm64" : "x86",
        });
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName))
            .AddPciDevice(_ => new PackageReadmeTests.ScratchRegisterDevice(), deviceNumber: 5);
        using IHost host = builder.Build();

        await host.StartAsync();
        IoreqServerHost served = host.Services.GetRequiredService<IoreqServerHost>();
        var xen = (SimulatedHypervisor)served.Hypervisor!;
        ushort id = served.Server!.Id;
        Assert.That(xen.Architecture, Is.EqualTo(architecture), "the platform came from configuration");

        // The guest's firmware finds the function behind the bridge and its driver uses the register.
        (GuestPci pci, EnumeratedFunction function) = ScratchRegister(xen, served);
        pci.WriteBar(function.Bars[0], offset: 0, size: 4, value: 0xC0FFEE);
        Assert.That(pci.ReadBar(function.Bars[0], offset: 0, size: 4), Is.EqualTo(0xC0FFEEUL));

        await host.StopAsync();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(served.LoopAbandoned, Is.False, "the loop tore the server down by itself, within the stop's bound");
            Assert.That(served.GuestGone, Is.False);
            Assert.That(ServerExists(xen, id), Is.False, "the ioreq server is destroyed");
            Assert.That(xen.CrashReason, Is.Null);
        }
    }

    [Test]
    public async Task AStopWhileADeviceCallBlocksStillDestroysTheServer([Values] bool boundByTheHostsTimeout)
    {
        using var xen = new SimulatedHypervisor(new SimulationOptions { ResponseTimeout = TimeSpan.FromSeconds(30) });
        using var busy = new BusyDevice(DeviceBase);
        HostApplicationBuilder builder = Builder(new() { ["Ioreq:StopTimeout"] = boundByTheHostsTimeout ? "00:10:00" : "00:00:00.2" });
        if (boundByTheHostsTimeout)
        {
            // The host's own shutdown timeout is the shorter bound here: the teardown keeps to it.
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(200));
        }

        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName))
            .UseHypervisor(_ => xen)
            .AddDevice((_, _) => busy);
        using IHost host = builder.Build();
        await host.StartAsync();
        IoreqServerHost served = host.Services.GetRequiredService<IoreqServerHost>();
        ushort id = served.Server!.Id;

        // The guest's access keeps the event loop inside the device until the test lets it go.
        var guest = new Thread(() => _ = xen.Vcpu(0).ReadMmio(DeviceBase, 4)) { IsBackground = true };
        guest.Start();
        Assert.That(busy.Entered.Wait(TimeSpan.FromSeconds(10)), Is.True, "the loop is inside the device");

        await host.StopAsync();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(served.LoopAbandoned, Is.True, "the loop could not stop");
            Assert.That(ServerExists(xen, id), Is.False, "the ioreq server is destroyed all the same: Xen no longer routes the device's ranges to it");
        }

        // Once the device returns, the abandoned loop ends and its own teardown finds the server gone, harmlessly.
        busy.Release.Set();
        Assert.That(guest.Join(TimeSpan.FromSeconds(40)), Is.True);
        Assert.That(SimulatedPciGuest.WaitUntil(() => !served.Server.IsRunning), Is.True);
        served.Server.Dispose();
    }

    [Test]
    public async Task WhenTheGuestIsGoneTheApplicationStops()
    {
        HostApplicationBuilder builder = Builder(new() { ["Ioreq:Mode"] = "Simulated", ["Ioreq:GuestCheckInterval"] = "00:00:00.05" });
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName))
            .AddPciDevice(_ => new PackageReadmeTests.ScratchRegisterDevice(), deviceNumber: 5);
        using IHost host = builder.Build();
        await host.StartAsync();
        IoreqServerHost served = host.Services.GetRequiredService<IoreqServerHost>();
        var xen = (SimulatedHypervisor)served.Hypervisor!;
        IHostApplicationLifetime lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        Assert.That(lifetime.ApplicationStopping.IsCancellationRequested, Is.False, "the guest is there: the application runs");

        // What Xen does when the domain is destroyed: its ioreq servers go at once.
        xen.DestroyIoreqServer(xen.Domain, served.Server!.Id);

        Assert.That(lifetime.ApplicationStopping.WaitHandle.WaitOne(TimeSpan.FromSeconds(10)), Is.True, "the application was asked to stop");
        Assert.That(served.GuestGone, Is.True);
        await host.StopAsync();
        Assert.That(served.LoopAbandoned, Is.False, "the teardown found the server gone, harmlessly");
    }

    [Test]
    public async Task AServerThatStopsByItselfStopsTheApplicationWithoutCallingTheGuestGone()
    {
        HostApplicationBuilder builder = Builder(new() { ["Ioreq:Mode"] = "Simulated", ["Ioreq:GuestCheckInterval"] = "00:00:00.05" });
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName))
            .AddDevice((_, server) => new StopOnWriteDevice(server));
        using IHost host = builder.Build();
        await host.StartAsync();
        IoreqServerHost served = host.Services.GetRequiredService<IoreqServerHost>();
        var xen = (SimulatedHypervisor)served.Hypervisor!;
        IHostApplicationLifetime lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();

        xen.Vcpu(0).WriteMmio(DeviceBase, 4, 1);   // the device stops its own server

        Assert.That(lifetime.ApplicationStopping.WaitHandle.WaitOne(TimeSpan.FromSeconds(10)), Is.True, "the application was asked to stop");
        Assert.That(served.GuestGone, Is.False, "the guest is still there; its server is what stopped");
        await host.StopAsync();
    }

    [Test]
    public async Task TheCommandLineSwitchesChooseTheGuest()
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddCommandLine(["--mode", "simulated", "--domain", "7", "--platform", "arm64"], IoreqServerHostOptions.CommandLineSwitches);
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName));
        using IHost host = builder.Build();
        await host.StartAsync();
        IoreqServerHost served = host.Services.GetRequiredService<IoreqServerHost>();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(served.Hypervisor, Is.InstanceOf<SimulatedHypervisor>());
            Assert.That(served.Hypervisor!.Architecture, Is.EqualTo(GuestArchitecture.Arm64));
            Assert.That(served.Server!.Domain, Is.EqualTo((ushort)7));
            Assert.That(served.Server.IsRunning, Is.True);
        }

        await host.StopAsync();
    }

    [Test]
    public async Task TheBusyPollSwitchReachesTheServerAndItsLoopPolls()
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddCommandLine(["--mode", "simulated", "--busy-poll", "00:00:01"], IoreqServerHostOptions.CommandLineSwitches);
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName))
            .AddPciDevice(_ => new PackageReadmeTests.ScratchRegisterDevice(), deviceNumber: 5);
        using IHost host = builder.Build();
        await host.StartAsync();
        IoreqServerHost served = host.Services.GetRequiredService<IoreqServerHost>();
        (GuestPci pci, EnumeratedFunction function) = ScratchRegister((SimulatedHypervisor)served.Hypervisor!, served);
        for (uint i = 0; i < 100; i++)
        {
            pci.WriteBar(function.Bars[0], offset: 0, size: 4, value: i);
            Assert.That(pci.ReadBar(function.Bars[0], offset: 0, size: 4), Is.EqualTo((ulong)i));
        }

        Assert.That(served.Server!.Statistics.PolledRequests, Is.GreaterThan(0), "requests a second apart at most were found by the loop's spin");
        await host.StopAsync();
    }

    [Test]
    public async Task TheLoopThreadsSwitchReachesTheServerAndASecondVcpuIsServedByARequestLoop()
    {
        using var xen = new SimulatedHypervisor(new SimulationOptions { VcpuCount = 2 });
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddCommandLine(["--mode", "simulated", "--loop-threads", "2"], IoreqServerHostOptions.CommandLineSwitches);
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName))
            .UseHypervisor(_ => xen)
            .AddPciDevice(_ => new PackageReadmeTests.ScratchRegisterDevice(), deviceNumber: 5);
        using IHost host = builder.Build();
        await host.StartAsync();
        IoreqServerHost served = host.Services.GetRequiredService<IoreqServerHost>();

        // vCPU 1's enumeration: PCI configuration is the event loop's, so its request loop hands every access over.
        EnumeratedFunction function = SimulatedFirmware.EnumeratePci(xen.Vcpu(1), served.Bridge!.Platform).Single(f => f.VendorId == 0x1234);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(function.Bars, Is.Not.Empty);
            Assert.That(served.Server!.Statistics.HandedOffRequests, Is.EqualTo(served.Server.Statistics.PciConfigRequests).And.GreaterThan(0));
        }

        await host.StopAsync();
    }

    [TestCase("0", "Ioreq:LoopThreads: 0 is not a loop-thread count; give 1 to 128.")]
    [TestCase("129", "Ioreq:LoopThreads: 129 is not a loop-thread count")]
    public void ALoopThreadCountNoServerCanRunFailsTheStartAndSaysWhichSetting(string loops, string message)
    {
        HostApplicationBuilder builder = Builder(new() { ["Ioreq:Mode"] = "Simulated", ["Ioreq:LoopThreads"] = loops });
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName));
        using IHost host = builder.Build();

        Assert.That(async () => await host.StartAsync(), Throws.InstanceOf<InvalidOperationException>().With.Message.Contains(message));
    }

    [Test]
    public void ABusyPollBeyondOneSecondFailsTheStartAndSaysWhichSetting()
    {
        HostApplicationBuilder builder = Builder(new() { ["Ioreq:Mode"] = "Simulated", ["Ioreq:BusyPoll"] = "00:00:02" });
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName));
        using IHost host = builder.Build();

        Assert.That(async () => await host.StartAsync(), Throws.InstanceOf<InvalidOperationException>().With.Message.Contains("Ioreq:BusyPoll: 00:00:02 is not a busy poll"));
    }

    [TestCase("Xen", null, "Ioreq:Domain: no guest domain given")]
    [TestCase("Simulated", "40000", "Ioreq:Domain")]
    [TestCase("Simulated", "32752", "Ioreq:Domain: 32752 is a reserved domain id")]
    public void ASettingThatCannotRunFailsTheStartAndSaysWhichOne(string mode, string? domain, string message)
    {
        var settings = new Dictionary<string, string?> { ["Ioreq:Mode"] = mode };
        if (domain is not null)
        {
            settings["Ioreq:Domain"] = domain;
        }

        HostApplicationBuilder builder = Builder(settings);
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName));
        using IHost host = builder.Build();

        Assert.That(async () => await host.StartAsync(), Throws.InstanceOf<InvalidOperationException>().With.Message.Contains(message));
    }

    [Test]
    public void A_segment_the_platform_cannot_reach_is_refused_where_it_is_chosen()
    {
        IoreqServerBuilder builder = new ServiceCollection().AddIoreqServer();
        Assert.That(
            () => builder.UsePlatform(new IoreqSdk.Platforms.X86Platform(), segment: 1),
            Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("An x86 guest reaches PCI segment 0 only"));
        Assert.That(() => builder.UsePlatform(new IoreqSdk.Platforms.Arm64Platform(), segment: 1), Throws.Nothing);
    }

    [Test]
    public void OneHostServesOneGuest()
    {
        var services = new ServiceCollection();
        services.AddIoreqServer();
        Assert.That(() => services.AddIoreqServer(), Throws.InvalidOperationException.With.Message.Contains("one process per guest"));
    }

    /// <summary>The scratch-register function at device 5 as the guest finds it: enumerated by its firmware, driven by vCPU 0.</summary>
    private static (GuestPci Pci, EnumeratedFunction Function) ScratchRegister(SimulatedHypervisor xen, IoreqServerHost served)
    {
        EnumeratedFunction function = SimulatedFirmware.EnumeratePci(xen.Vcpu(0), served.Bridge!.Platform).Single(f => f.VendorId == 0x1234);
        return (new GuestPci(xen.Vcpu(0), served.Bridge.Platform), function);
    }

    private static HostApplicationBuilder Builder(Dictionary<string, string?> settings)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
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

    private sealed class StopOnWriteDevice : DeviceModel
    {
        private readonly IoreqServer _server;

        public StopOnWriteDevice(IoreqServer server)
            : base("stopper")
        {
            _server = server;
            AddMmioRegion(0x1000, DeviceBase, AccessWidths.All);
        }

        public override ulong Read(DeviceRegion region, ulong offset, int size) => 0;

        public override void Write(DeviceRegion region, ulong offset, int size, ulong value) => _server.Stop();
    }
}
