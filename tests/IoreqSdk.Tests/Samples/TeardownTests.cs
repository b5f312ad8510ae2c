using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Demu;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>
/// demu's way out of a real-Xen run (issue 13 item 4): whatever the event loop is doing, a stop ends with the ioreq
/// server destroyed, so it cannot keep claiming the guest's ranges after demu is gone.
/// </summary>
[TestFixture]
public sealed class TeardownTests
{
    private const ulong DeviceBase = 0xFE00_0000;

    [Test]
    public void DemuHandlesSignalsItselfSoSystemCommandLineCannotCutTheTeardownShort()
    {
        // System.CommandLine's own handler gives the action ProcessTerminationTimeout (2 s) after SIGTERM, then returns
        // and the process exits — with the ioreq server still alive if the loop was busy.
        Assert.That(DemuCommand.DefaultConfiguration().ProcessTerminationTimeout, Is.Null);
    }

    [Test]
    public void ASignalStopsTheRunInsteadOfEndingTheProcess()
    {
        // SIGHUP (a closed terminal) ends a process by default, ioreq server and all. SIGINT and SIGTERM go the same
        // way through the same registration; SIGHUP is the one this test may send to its own process (the test
        // platform takes SIGINT and SIGTERM as "abort the run").
        using var stop = new CancellationTokenSource();
        using (Teardown.OnSignals(stop))
        {
            using var kill = System.Diagnostics.Process.Start("kill", $"-HUP {Environment.ProcessId}");
            kill.WaitForExit();
            Assert.That(kill.ExitCode, Is.Zero);
            Assert.That(stop.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(10)), Is.True, "the signal asked the run to stop");
        }
    }

    [Test]
    public async Task AStopWhileTheEventLoopIsBusyStillDestroysTheServer()
    {
        using var xen = new SimulatedHypervisor(new SimulationOptions { ResponseTimeout = TimeSpan.FromSeconds(30) });
        using var busy = new BusyDevice(DeviceBase);
        var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        server.AddDevice(busy);
        using var stop = new CancellationTokenSource();
        Task serving = server.RunAsync(stop.Token);
        ushort id = server.Id;

        // The guest's access keeps the loop inside the device until the test lets it go.
        var guest = new Thread(() => _ = xen.Vcpu(0).ReadMmio(DeviceBase, 4)) { IsBackground = true };
        guest.Start();
        Assert.That(busy.Entered.Wait(TimeSpan.FromSeconds(10)), Is.True, "the loop is inside the device");

        stop.Cancel();
        using var error = new StringWriter();
        bool finished = await Teardown.FinishAsync(serving, xen, xen.Domain, id, TimeSpan.FromMilliseconds(100), error);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(finished, Is.False, "the loop could not stop");
            Assert.That(() => xen.GetBufferedIoreqPort(xen.Domain, id), Throws.InstanceOf<HypervisorException>().With.Property(nameof(HypervisorException.ErrorNumber)).EqualTo(Errno.ENOENT),
                "the server is destroyed all the same: Xen no longer routes the device's ranges to it");
            Assert.That(error.ToString(), Does.Contain($"destroying ioreq server {id} without it"));
        }

        // Once the device returns, the abandoned loop ends and its own teardown finds the server gone, harmlessly.
        busy.Release.Set();
        Assert.That(serving.Wait(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(guest.Join(TimeSpan.FromSeconds(40)), Is.True);
        server.Dispose();
    }

    [Test]
    public async Task AnIdleLoopTearsDownByItself()
    {
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        using var stop = new CancellationTokenSource();
        Task serving = server.RunAsync(stop.Token);
        ushort id = server.Id;
        stop.Cancel();
        using var error = new StringWriter();

        bool finished = await Teardown.FinishAsync(serving, xen, xen.Domain, id, TimeSpan.FromSeconds(30), error);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(finished, Is.True);
            Assert.That(error.ToString(), Is.Empty);
            Assert.That(() => xen.GetBufferedIoreqPort(xen.Domain, id), Throws.InstanceOf<HypervisorException>());
        }
    }
}
