using System;
using System.Threading;
using Demu;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>
/// demu's way out of a real-Xen run (issue 13 item 4): whatever the event loop is doing, a stop ends with the ioreq
/// server destroyed, so it cannot keep claiming the guest's ranges after demu is gone.
/// </summary>
[TestFixture]
public sealed class TeardownTests
{
    [Test]
    public void DemuHandlesSignalsItselfSoSystemCommandLineCannotCutTheTeardownShort()
    {
        // System.CommandLine's own handler gives the action ProcessTerminationTimeout (2 s) after SIGTERM, then returns
        // and the process exits — with the ioreq server still alive if the loop was busy.
        Assert.That(DemuCommand.DefaultConfiguration().ProcessTerminationTimeout, Is.Null);
    }

    [Test]
    public void AHangupStopsTheRunInsteadOfEndingTheProcess()
    {
        // SIGHUP (a closed terminal) ends a process by default, ioreq server and all, and the host's lifetime leaves it
        // alone (it takes SIGINT, SIGTERM and SIGQUIT); SIGHUP is also the one this test may send to its own process
        // (the test platform takes SIGINT and SIGTERM as "abort the run").
        using var stop = new ManualResetEventSlim();
        using (Teardown.OnHangup(stop.Set))
        {
            using var kill = System.Diagnostics.Process.Start("kill", $"-HUP {Environment.ProcessId}");
            kill.WaitForExit();
            Assert.That(kill.ExitCode, Is.Zero);
            // .NET runs a SIGHUP's handlers on the thread pool (SIGINT, SIGQUIT and SIGTERM get a thread of their own),
            // so the stop comes when the pool gets to it: 10 s were once not enough in CI, with both test processes
            // running on the machine's two cores. The bound is a hang's, not a speed's; the pool's state says why.
            Assert.That(stop.Wait(TimeSpan.FromSeconds(60)), Is.True, $"the signal asked the run to stop (thread pool: {ThreadPool.ThreadCount} threads, {ThreadPool.PendingWorkItemCount} items waiting)");
        }
    }
}
