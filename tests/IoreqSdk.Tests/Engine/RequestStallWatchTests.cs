using System;
using System.Diagnostics;
using IoreqSdk.Server;
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
        bool early = watch.Exit();
        Assert.That(early, Is.False, "seen for less than the threshold");

        long stalled = watch.Enter();
        watch.Sample(5000);
        watch.Sample(5000 + s_thresholdTicks);
        watch.Sample(5000 + (3 * s_thresholdTicks));
        bool flagged = watch.Exit();
        bool forThisRequest = watch.TakeOverrun(stalled, out long held);
        watch.Enter();
        bool again = watch.Exit();

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
        bool any = false;
        for (int i = 0; i < 100; i++)
        {
            // A busy loop serving short requests: each look sees another request's mark.
            watch.Enter();
            watch.Sample(i * s_thresholdTicks);
            any |= watch.Exit();
        }

        // Waiting for events: no mark at all, however long.
        watch.Sample(200 * s_thresholdTicks);
        watch.Sample(400 * s_thresholdTicks);
        watch.Enter();
        any |= watch.Exit();
        Assert.That(any, Is.False);
    }

    [Test]
    public void AFlagRaisedAsTheHandlerReturnsIsAccountedAtTheNextExit()
    {
        var watch = new RequestStallWatch(s_threshold);
        long stalled = watch.Enter();
        watch.Sample(0);

        // The sampler's second look reads the mark just before the loop clears it, and flags after the loop's check.
        const long ReadJustBeforeTheExit = 1;
        bool missed = watch.Exit();
        watch.Judge(ReadJustBeforeTheExit, s_thresholdTicks);
        long later = watch.Enter();
        bool seen = watch.Exit();
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
}
