using System;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Demu;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Hosting;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>
/// demu's real-Xen run on the Generic Host (issue 18), on the SDK's simulated Xen: the same host composition as on real
/// Xen (XenRun.ServeAsync is what XenRun.RunAsync runs once it opened Xen), with the lines the e2e scripts read and the
/// exit codes demu --help documents.
/// </summary>
[TestFixture]
public sealed class DemuXenHostTests
{
    private const ulong BusyBase = 0xFE00_0000;

    [Test]
    public async Task TheRunServesTheDeviceAndWhenTheGuestIsGoneExitsZeroWithTheServerDestroyed()
    {
        using var xen = new SimulatedHypervisor();
        using var error = new StringWriter();
        XenHost? host = null;
        Task<(int ExitCode, bool Abandoned)> run = XenRun.ServeAsync(Settings(xen, error), xen, CancellationToken.None, created: h => host = h);
        await host!.Started;
        ushort id = host.Served.Server!.Id;

        // The guest's firmware finds edu behind the bridge: the device is served.
        EnumeratedFunction edu = SimulatedFirmware.EnumeratePci(xen.Vcpu(0), new X86Platform()).Single(f => f.VendorId == 0x1234);
        Assert.That(edu.DeviceId, Is.EqualTo(0x11E8));

        // What Xen does when the domain is destroyed: its ioreq servers go at once.
        xen.DestroyIoreqServer(xen.Domain, id);
        (int exitCode, bool abandoned) = await run;

        string lines = error.ToString();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero, lines);
            Assert.That(abandoned, Is.False);
            Assert.That(ServerExists(xen, id), Is.False, "the ioreq server is destroyed");

            // The lines tests/e2e greps (lib/dom0.sh, xen*/dom0-init.sh), byte for byte.
            Assert.That(lines, Does.Contain($"demu: edu (1234:11e8) at {new PciSbdf(0, 0, 5, 0)} for domain {xen.Domain}, ioreq server {id}; Ctrl-C to stop\n"));
            Assert.That(lines, Does.Contain($"demu: handles restricted to domain {xen.Domain} (a call for domain 32751 now fails: EPERM; unrestricted: ENOENT)\n"));
            Assert.That(lines, Does.Contain($"demu: domain {xen.Domain} is gone; stopping.\n"));
            Assert.That(lines, Does.Contain("demu: stopped; ioreq server destroyed. "));
            Assert.That(xen.RestrictedTo, Is.EqualTo(xen.Domain), "the server restricted the handles it was given");
        }
    }

    [Test]
    public async Task AStopAsSigtermAsksForItDestroysTheServerAndExitsZero([Values("edu", "serial")] string device)
    {
        using var xen = new SimulatedHypervisor();
        using var error = new StringWriter();
        XenHost? host = null;
        DemuSettings settings = Settings(xen, error) with { Device = device == "serial" ? DeviceKind.Serial : DeviceKind.Edu, Restrict = false };
        Task<(int ExitCode, bool Abandoned)> run = XenRun.ServeAsync(settings, xen, CancellationToken.None, created: h => host = h);
        await host!.Started;
        ushort id = host.Served.Server!.Id;

        // The host's lifetime is what turns SIGTERM (ConsoleLifetime, or systemd's under systemd) into this stop.
        Assert.That(host.Services.GetRequiredService<IHostLifetime>(), Is.InstanceOf<Microsoft.Extensions.Hosting.Internal.ConsoleLifetime>());
        host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        (int exitCode, bool abandoned) = await run;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero, error.ToString());
            Assert.That(abandoned, Is.False);
            Assert.That(ServerExists(xen, id), Is.False, "the ioreq server is destroyed");
            Assert.That(error.ToString(), Does.Contain("demu: stopped; ioreq server destroyed.").And.Not.Contain("is gone"));
            Assert.That(xen.RestrictedTo, Is.Null, "--no-restrict leaves the handles as they are");
        }
    }

    [Test]
    public async Task TheCallersTokenStopsTheRunLikeASignal()
    {
        using var xen = new SimulatedHypervisor();
        using var error = new StringWriter();
        using var stop = new CancellationTokenSource();
        XenHost? host = null;
        Task<(int ExitCode, bool Abandoned)> run = XenRun.ServeAsync(Settings(xen, error), xen, stop.Token, created: h => host = h);
        await host!.Started;
        ushort id = host.Served.Server!.Id;

        await stop.CancelAsync();

        Assert.That(await run, Is.EqualTo((0, false)), error.ToString());
        Assert.That(ServerExists(xen, id), Is.False);
    }

    [Test]
    public async Task BusyPollReachesTheServerItServes()
    {
        using var xen = new SimulatedHypervisor();
        using var error = new StringWriter();
        using var stop = new CancellationTokenSource();
        XenHost? host = null;
        Task<(int ExitCode, bool Abandoned)> run = XenRun.ServeAsync(Settings(xen, error) with { BusyPoll = TimeSpan.FromSeconds(1) }, xen, stop.Token, created: h => host = h);
        await host!.Started;

        // The firmware's enumeration: config reads back to back, each found by the loop's spin after the first.
        Assert.That(SimulatedFirmware.EnumeratePci(xen.Vcpu(0), new X86Platform()).Select(f => f.VendorId), Does.Contain((ushort)0x1234));
        Assert.That(host.Served.Server!.Statistics.PolledRequests, Is.GreaterThan(0));
        await stop.CancelAsync();
        Assert.That(await run, Is.EqualTo((0, false)), error.ToString());
    }

    [Test]
    public async Task LoopThreadsReachTheServerItServes()
    {
        using var xen = new SimulatedHypervisor(new SimulationOptions { VcpuCount = 2 });
        using var error = new StringWriter();
        using var stop = new CancellationTokenSource();
        XenHost? host = null;
        Task<(int ExitCode, bool Abandoned)> run = XenRun.ServeAsync(Settings(xen, error) with { LoopThreads = 2 }, xen, stop.Token, created: h => host = h);
        await host!.Started;

        // vCPU 1's enumeration reaches its own loop first, which hands each configuration access to the event loop.
        Assert.That(SimulatedFirmware.EnumeratePci(xen.Vcpu(1), new X86Platform()).Select(f => f.VendorId), Does.Contain((ushort)0x1234));
        Assert.That(host.Served.Server!.Statistics.HandedOffRequests, Is.GreaterThan(0));
        await stop.CancelAsync();
        Assert.That(await run, Is.EqualTo((0, false)), error.ToString());
    }

    [Test]
    public async Task AStopWhileADeviceCallBlocksStillDestroysTheServerWithinTheBoundAndExitsOne()
    {
        using var xen = new SimulatedHypervisor(new SimulationOptions { ResponseTimeout = TimeSpan.FromSeconds(30) });
        using var busy = new BusyDevice(BusyBase);
        using var error = new StringWriter();
        XenHost? host = null;
        Task<(int ExitCode, bool Abandoned)> run = XenRun.ServeAsync(Settings(xen, error), xen, CancellationToken.None,
            compose: ioreq =>
            {
                ioreq.AddDevice((_, _) => busy);
                ioreq.Services.Configure<IoreqServerHostOptions>(o => o.StopTimeout = TimeSpan.FromMilliseconds(200));
            },
            created: h => host = h);
        await host!.Started;
        ushort id = host.Served.Server!.Id;

        // The guest's access keeps the event loop inside the device until the test lets it go.
        var guest = new Thread(() => _ = xen.Vcpu(0).ReadMmio(BusyBase, 4)) { IsBackground = true };
        guest.Start();
        Assert.That(busy.Entered.Wait(TimeSpan.FromSeconds(10)), Is.True, "the loop is inside the device");

        host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        (int exitCode, bool abandoned) = await run;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.EqualTo(DemuHelp.RunFailed));
            Assert.That(abandoned, Is.True, "the loop could not stop");
            Assert.That(ServerExists(xen, id), Is.False, "the ioreq server is destroyed all the same: Xen no longer routes the device's ranges to it");
            Assert.That(error.ToString(), Does.Contain($"demu: the event loop did not stop within 0.2 s (a device call is still running); destroying ioreq server {id} without it.\n")
                .And.Contain($"demu: stopped; ioreq server {id} destroyed, the busy event loop abandoned.\n"));
        }

        // Once the device returns, the abandoned loop ends and its own teardown finds the server gone, harmlessly.
        busy.Release.Set();
        Assert.That(guest.Join(TimeSpan.FromSeconds(40)), Is.True);
        Assert.That(SimulatedPciGuest.WaitUntil(() => !host.Served.Server.IsRunning), Is.True);
        host.Served.Server.Dispose();
        host.Dispose();
    }

    [Test]
    public async Task ARefusedSlotIsExitTwoWithTheSameLineAsBeforeAndNoServerLeft()
    {
        using var xen = new SimulatedHypervisor();
        using var error = new StringWriter();
        var taken = new PciSbdf(0, 0, 0, 0);
        DemuSettings settings = Settings(xen, error) with { Address = taken };

        (int exitCode, bool abandoned) = await XenRun.ServeAsync(settings, xen, CancellationToken.None);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.EqualTo(DemuHelp.CannotRun));
            Assert.That(abandoned, Is.False);
            Assert.That(error.ToString(), Is.EqualTo($"demu: --bdf {taken}: {new X86Platform().ReservedSlotReason(taken)} Choose another --bdf.\n"));
            Assert.That(AnyServer(xen), Is.False, "nothing is left claiming the guest's ranges");
        }
    }

    [Test]
    public async Task AFailedRestrictionProofStopsTheRunWithExitOne()
    {
        // A hypervisor whose restriction does not hold: the witness call still reaches Xen afterwards.
        using var xen = new SimulatedHypervisor();
        using var error = new StringWriter();
        var leaky = new UnrestrictableHypervisor(xen);

        (int exitCode, _) = await XenRun.ServeAsync(Settings(xen, error), leaky, CancellationToken.None);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.EqualTo(DemuHelp.RunFailed));
            Assert.That(error.ToString(), Does.Contain("the restriction does not hold; stopping."));
            Assert.That(AnyServer(xen), Is.False, "the server is destroyed on the way out");
        }
    }

    private static DemuSettings Settings(SimulatedHypervisor xen, TextWriter error) => new()
    {
        Domain = xen.Domain,
        Architecture = xen.Architecture,
        Error = error,
        SerialOutput = null,
    };

    private static bool AnyServer(SimulatedHypervisor xen) => Enumerable.Range(0, SimulatedHypervisor.MaxServers + 1).Any(id => ServerExists(xen, (ushort)id));

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

    /// <summary>A Xen whose restriction does not take: everything else is the simulated guest's.</summary>
    private sealed class UnrestrictableHypervisor(SimulatedHypervisor xen) : IHypervisor
    {
        public GuestArchitecture Architecture => xen.Architecture;

        public ushort CreateIoreqServer(ushort domain, BufferedIoreqMode mode) => xen.CreateIoreqServer(domain, mode);

        public IoreqServerPages AcquireIoreqServerPages(ushort domain, ushort server, bool buffered) => xen.AcquireIoreqServerPages(domain, server, buffered);

        public uint GetBufferedIoreqPort(ushort domain, ushort server) => xen.GetBufferedIoreqPort(domain, server);

        public void MapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end) => xen.MapIoRange(domain, server, type, start, end);

        public void UnmapIoRange(ushort domain, ushort server, IoRangeType type, ulong start, ulong end) => xen.UnmapIoRange(domain, server, type, start, end);

        public void SetIoreqServerState(ushort domain, ushort server, bool enabled) => xen.SetIoreqServerState(domain, server, enabled);

        public void DestroyIoreqServer(ushort domain, ushort server) => xen.DestroyIoreqServer(domain, server);

        public int GetVcpuCount(ushort domain) => xen.GetVcpuCount(domain);

        public IEventChannel OpenEventChannel() => xen.OpenEventChannel();

        public void SetPciIntxLevel(ushort domain, PciSbdf device, int intx, bool asserted) => xen.SetPciIntxLevel(domain, device, intx, asserted);

        public void SetIsaIrqLevel(ushort domain, int irq, bool asserted) => xen.SetIsaIrqLevel(domain, irq, asserted);

        public void SetIrqLevel(ushort domain, uint irq, bool asserted) => xen.SetIrqLevel(domain, irq, asserted);

        public void InjectMsi(ushort domain, ulong address, uint data) => xen.InjectMsi(domain, address, data);

        public void Restrict(ushort domain)
        {
        }

        public IMappedPages MapGuestFrames(ushort domain, ulong firstFrame, int count, bool writable) => xen.MapGuestFrames(domain, firstFrame, count, writable);

        public void Dispose()
        {
        }
    }
}
