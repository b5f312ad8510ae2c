using System;
using System.Diagnostics;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>
/// The clock-free stall watch of the request path, driven by hand: the loop's marks (Enter, Exit) and the sampler's
/// looks (Sample) with chosen timestamps, so no test depends on how fast this machine runs.
/// </summary>
[TestFixture]
public sealed class RequestStallWatchTests
{
    private static readonly TimeSpan s_threshold = TimeSpan.FromMilliseconds(10);
    private static readonly long s_thresholdTicks = (long)Math.Ceiling(s_threshold.TotalSeconds * Stopwatch.Frequency);

    [Test]
    public void AHandlerSeenForTheThresholdIsFlaggedOnceAndNotBefore()
    {
        var watch = new RequestStallWatch(s_threshold);
        long sequence = watch.Enter();
        watch.Sample(1000);
        watch.Sample(1000 + s_thresholdTicks - 1);
        bool early = watch.Exit(sequence);
        Assert.That(early, Is.False, "seen for less than the threshold");

        long stalled = watch.Enter();
        watch.Sample(5000);
        watch.Sample(5000 + s_thresholdTicks);
        watch.Sample(5000 + (3 * s_thresholdTicks));
        bool flagged = watch.Exit(stalled);
        bool forThisRequest = watch.TakeOverrun(stalled, out long held);
        bool again = watch.Exit(watch.Enter());

        using (Assert.EnterMultipleScope())
        {
            Assert.That(stalled, Is.GreaterThan(sequence));
            Assert.That(flagged, Is.True, "the same request at two looks the threshold apart");
            Assert.That(forThisRequest, Is.True);
            Assert.That(held, Is.GreaterThanOrEqualTo((long)s_threshold.TotalMilliseconds), "at least the threshold");
            Assert.That(again, Is.False, "a flag is accounted once, and a third look did not flag the request again");
        }
    }

    [Test]
    public void DifferentRequestsAtEachLookAndAnIdleLoopAreNeverFlagged()
    {
        var watch = new RequestStallWatch(s_threshold);
        bool flagged = false;
        bool servedAtEveryLook = true;
        for (int i = 0; i < 100; i++)
        {
            // A busy loop serving short requests: each look sees another request's mark (in progress, or done).
            long sequence = watch.Enter();
            servedAtEveryLook &= watch.Sample(i * s_thresholdTicks);
            flagged |= watch.Exit(sequence);
            servedAtEveryLook &= watch.Sample((i * s_thresholdTicks) + 1);
        }

        // Waiting for events: the last request's done mark, however long.
        bool servedWhileIdle = watch.Sample(200 * s_thresholdTicks) | watch.Sample(400 * s_thresholdTicks);
        flagged |= watch.Exit(watch.Enter());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(flagged, Is.False);
            Assert.That(servedAtEveryLook, Is.True, "a look that finds another mark sees a loop at work");
            Assert.That(servedWhileIdle, Is.False, "a mark that did not move is an idle loop");
        }
    }

    [Test]
    public void AFlagRaisedAsTheHandlerReturnsIsAccountedAtTheNextExit()
    {
        var watch = new RequestStallWatch(s_threshold);
        long stalled = watch.Enter();
        watch.Sample(0);

        // The sampler's second look reads the mark just before the loop clears it, and flags after the loop's check.
        const long ReadJustBeforeTheExit = 1;
        bool missed = watch.Exit(stalled);
        watch.Judge(ReadJustBeforeTheExit, s_thresholdTicks);
        long later = watch.Enter();
        bool seen = watch.Exit(later);
        bool forLater = watch.TakeOverrun(later, out long held);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(missed, Is.False);
            Assert.That((stalled, later), Is.EqualTo((1L, 2L)));
            Assert.That(seen, Is.True, "the flag for request 1 is seen at request 2's exit");
            Assert.That(forLater, Is.False, "and reported as an earlier request's");
            Assert.That(held, Is.EqualTo((long)s_threshold.TotalMilliseconds), "which held the loop at least the threshold");
        }
    }

    [Test]
    public void TheSamplingPeriodIsHalfTheThresholdWithinItsBounds()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(new RequestStallWatch(TimeSpan.FromMilliseconds(10)).SamplingPeriodMilliseconds, Is.EqualTo(5));
            Assert.That(new RequestStallWatch(TimeSpan.FromTicks(1)).SamplingPeriodMilliseconds, Is.EqualTo(1));
            Assert.That(new RequestStallWatch(TimeSpan.FromDays(1)).SamplingPeriodMilliseconds, Is.EqualTo(500));
        }
    }

    // An idle device model must not keep a thread waking hundreds of times a second: the sampler rests once every loop
    // was idle for a while. The first request after the rest rouses it before its handler runs, so a handler that
    // then holds the loop is still seen at the sampling period, not at the resting one.
    [Test]
    public void TheSamplerRestsWhileTheLoopIsIdleAndTheNextRequestRousesIt()
    {
        const ulong Mmio = 0xFEB0_0000;
        bool restingInHandler = true;
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio)
        {
            OnRead = (offset, _) =>
            {
                restingInHandler = StallSampler.IsResting;
                Thread.Sleep(offset == 0x40 ? 200 : 0);
            },
        };
        using var xen = new IoreqSdk.Simulation.SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, LoopStallThreshold = TimeSpan.FromMilliseconds(20) });
        server.AddDevice(device);
        server.Start();
        xen.Vcpu(0).ReadMmio(Mmio, 4);

        bool rested = Wait.Until(() => StallSampler.IsResting);
        xen.Vcpu(0).ReadMmio(Mmio + 0x40, 4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rested, Is.True, "an idle loop lets the sampler rest");
            Assert.That(restingInHandler, Is.False, "the request roused it before its handler ran");
            Assert.That(server.Statistics.LoopOverruns, Is.GreaterThanOrEqualTo(1), "a 200 ms handler after the rest, against 20 ms, seen at the sampling period");
        }
    }
}
