using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices;

/// <summary>The host-to-guest byte queue both serial devices use: bounded, in order across the ring's wrap, one delivery scheduled per burst.</summary>
[TestFixture]
public sealed class HostByteQueueTests
{
    [Test]
    public void BytesComeOutInOrderAcrossTheWrapAndOnlyWhatFitsIsTaken()
    {
        var queue = new HostByteQueue(8);
        byte[] seen = new byte[8];
        Assert.That(queue.Enqueue([1, 2, 3, 4, 5, 6], 1, out _), Is.EqualTo(6));
        Assert.That(queue.Peek(seen.AsSpan(0, 4)), Is.EqualTo(4));
        queue.Consume(4);

        // Head at 4, two waiting: six more fit, wrapping the ring; the seventh does not.
        Assert.That(queue.Enqueue([7, 8, 9, 10, 11, 12, 13], 1, out _), Is.EqualTo(6));
        int n = queue.Peek(seen);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(n, Is.EqualTo(8));
            Assert.That(seen, Is.EqualTo(new byte[] { 5, 6, 7, 8, 9, 10, 11, 12 }));
            Assert.That(queue.Count, Is.EqualTo(8), "peeking takes nothing");
        }

        queue.Consume(8);
        Assert.That(queue.Count, Is.Zero);
    }

    [Test]
    public void OneDeliveryIsScheduledPerBurstUntilItRuns()
    {
        var queue = new HostByteQueue(16);
        queue.Enqueue([1], 1, out bool first);
        queue.Enqueue([2], 1, out bool second);
        queue.Unschedule();
        queue.Enqueue([3], 1, out bool third);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(first, Is.True);
            Assert.That(second, Is.False, "one delivery waits already");
            Assert.That(third, Is.True, "the delivery ran: the next bytes schedule another");
        }
    }

    // A delivery posted but dropped by a server stop must not be waited for in the next run: the bytes sent after the
    // restart schedule their own (the doorbell deferral's defect, in the host input's twin).
    [Test]
    public void ADeliveryScheduledInAnEarlierRunIsNotWaitedFor()
    {
        var queue = new HostByteQueue(16);
        queue.Enqueue([1], run: 1, out bool first);
        queue.Enqueue([2], run: 1, out bool sameRun);
        queue.Enqueue([3], run: 2, out bool nextRun);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(first, Is.True);
            Assert.That(sameRun, Is.False);
            Assert.That(nextRun, Is.True, "the stop dropped the first run's delivery");
        }
    }

    [Test]
    public void ASenderWaitingForRoomGoesOnWhenBytesAreTakenOrItIsCancelled()
    {
        var queue = new HostByteQueue(4);
        queue.Enqueue([1, 2, 3, 4], 1, out _);
        Task waiting = Task.Run(() => queue.WaitForRoom(CancellationToken.None));
        Assert.That(waiting.Wait(TimeSpan.FromMilliseconds(100)), Is.False, "full: the sender waits");
        queue.Consume(1);
        Assert.That(waiting.Wait(TimeSpan.FromSeconds(10)), Is.True, "room was made");

        queue.Enqueue([5], 1, out _);
        using var cancel = new CancellationTokenSource();
        Task cancelled = Task.Run(() => queue.WaitForRoom(cancel.Token));
        cancel.Cancel();
        Assert.That(cancelled.Wait(TimeSpan.FromSeconds(10)), Is.True, "cancellation ends the wait");
    }
}
