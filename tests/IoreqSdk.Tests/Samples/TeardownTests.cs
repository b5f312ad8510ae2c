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
        if (HangupIgnoredSinceStart())
        {
            Assert.Ignore("This process was started with SIGHUP ignored (under nohup), and .NET leaves an inherited SIG_IGN alone: no handler can see the signal. Run the tests without nohup.");
        }

        using var stop = new ManualResetEventSlim();
        using (Teardown.OnHangup(stop.Set))
        {
            using var kill = System.Diagnostics.Process.Start("kill", $"-HUP {Environment.ProcessId}");
            kill.WaitForExit();
            Assert.That(kill.ExitCode, Is.Zero);
            Assert.That(stop.Wait(TimeSpan.FromSeconds(10)), Is.True, "the signal asked the run to stop");
        }
    }

    // SigIgn in /proc/self/status: the mask of ignored signals, bit n-1 for signal n (SIGHUP is 1). A registration
    // does not change it while it is registered (the runtime installs its own handler only for signals not ignored).
    private static bool HangupIgnoredSinceStart()
    {
        foreach (string line in System.IO.File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("SigIgn:", StringComparison.Ordinal))
            {
                return (Convert.ToUInt64(line.Substring("SigIgn:".Length).Trim(), 16) & 1) != 0;
            }
        }

        return false;
    }
}
