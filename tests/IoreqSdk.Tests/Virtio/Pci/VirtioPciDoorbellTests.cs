using System;
using System.Collections.Generic;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>Doorbells do not hold the vCPU: answered first, the queue processed after from one coalesced, posted flush.</summary>
[TestFixture]
public sealed class VirtioPciDoorbellTests
{
    [Test]
    public void A_doorbell_write_is_answered_before_the_queue_is_processed()
    {
        var gate = new GateDevice();
        using var rig = new VirtioPciRig(GuestArchitecture.X86, gate);
        rig.Start();
        try
        {
            // Were the queue processed inside the write, this call could not return: the device holds its
            // processing until the test releases it below.
            rig.Driver.Notify(0);
            int completedWhenAnswered = gate.Completed;
            bool entered = gate.Entered.Wait(TimeSpan.FromSeconds(10));

            using (Assert.EnterMultipleScope())
            {
                Assert.That(completedWhenAnswered, Is.Zero, "the guest's write returned while the queue was not processed yet");
                Assert.That(entered, Is.True, "and the queue was processed after it, on the loop");
            }
        }
        finally
        {
            gate.Release.Set();
        }

        Assert.That(SimulatedPciGuest.WaitUntil(() => gate.Completed == 1), Is.True);
    }

    [Test]
    public void Doorbells_rung_before_the_flush_are_coalesced_into_one_post_and_one_notification_per_queue()
    {
        var rig = new VirtioRig(0);
        rig.StartSplit();
        var context = new RecordingContext();
        var doorbells = new QueueNotificationDeferral(rig.Device);
        doorbells.Ring(0, context);
        doorbells.Ring(0, context);
        doorbells.Ring(1, context);   // a queue that exists but is not enabled
        doorbells.Ring(2, context);   // no such queue
        doorbells.Ring(-1, context);
        int posts = context.Posted.Count;
        int notifiedBeforeFlush = rig.Device.Notified;
        context.RunPosted();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(posts, Is.EqualTo(1));
            Assert.That(notifiedBeforeFlush, Is.Zero);
            Assert.That(rig.Device.Notified, Is.EqualTo(1), "queue 0 once; queue 1 is not enabled");
            Assert.That(doorbells.Ignored, Is.EqualTo(2));
        }

        doorbells.Ring(0, context);
        Assert.That(context.Posted, Has.Count.EqualTo(1), "the next doorbell posts again");
    }

    [Test]
    public void A_full_work_queue_serves_the_doorbell_inline_rather_than_lose_it()
    {
        var rig = new VirtioRig(0);
        rig.StartSplit();
        var context = new RecordingContext { Refuse = true };
        var doorbells = new QueueNotificationDeferral(rig.Device);
        doorbells.Ring(0, context);
        doorbells.Ring(0, context);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Device.Notified, Is.EqualTo(2));
            Assert.That(doorbells.ProcessedInline, Is.EqualTo(2));
        }
    }

    [Test]
    public void A_flush_that_never_ran_is_posted_again_after_the_stale_threshold()
    {
        var rig = new VirtioRig(0);
        rig.StartSplit();
        var context = new RecordingContext();
        var doorbells = new QueueNotificationDeferral(rig.Device);
        doorbells.Ring(0, context);
        context.Posted.Clear(); // dropped, as by a server that stopped with it queued
        for (int i = 0; i < QueueNotificationDeferral.StaleFlushThreshold - 1; i++)
        {
            doorbells.Ring(0, context);
        }

        int postsBeforeThreshold = context.Posted.Count;
        doorbells.Ring(0, context);
        context.RunPosted();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(postsBeforeThreshold, Is.Zero, "coalesced into the flush thought queued");
            Assert.That(rig.Device.Notified, Is.EqualTo(1), "then posted again, and the queue served");
        }
    }

    [Test]
    public void A_reset_forgets_pending_doorbells()
    {
        var rig = new VirtioRig(0);
        rig.StartSplit();
        var context = new RecordingContext();
        var doorbells = new QueueNotificationDeferral(rig.Device);
        doorbells.Ring(0, context);
        doorbells.Clear();
        context.RunPosted();
        int afterReset = rig.Device.Notified;

        doorbells.Ring(0, context);
        doorbells.Clear();
        context.Posted.Clear();       // that flush never runs (the server stopped with it queued)
        doorbells.Ring(0, context);   // the flush thought posted was forgotten with the reset: this one posts
        context.RunPosted();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(afterReset, Is.Zero);
            Assert.That(rig.Device.Notified, Is.EqualTo(1));
        }
    }

    [Test]
    public void Hostile_doorbells_are_ignored_and_the_device_keeps_serving()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        var device = (PciEchoDevice)rig.Device;
        ulong notify = rig.Driver.Notifications.Offset;

        rig.Guest.WriteBar(0, notify, 2, 0);           // before DRIVER_OK: the device may not use the queue
        GuestSplitVirtqueue queue = rig.Start();
        rig.Guest.WriteBar(0, notify + (4 * 2), 2, 2);  // queue 2: the device has two
        rig.Guest.WriteBar(0, notify + 0xFFC, 4, 0);    // the end of the notification page
        rig.Guest.WriteBar(0, notify, 1, 0);            // a byte: no doorbell
        rig.Guest.WriteBar(0, notify + 2, 2, 0);        // between two doorbells
        rig.Guest.WriteBar(0, notify + 4, 2, 1);        // queue 1, not enabled
        rig.Driver.ReadStatus();                        // after every flush those writes posted

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Transport.IgnoredNotifications, Is.EqualTo(2));
            Assert.That(device.Notified, Is.Zero);
            Assert.That(rig.Guest.ReadBar(0, notify, 2), Is.Zero, "doorbells read 0");
            Assert.That(rig.EchoOnce(queue, 5, out _), Is.True);
            Assert.That(rig.Transport.InlineNotifications, Is.Zero);
        }
    }

    /// <summary>Holds its queue processing until released, to show the doorbell write did not wait for it.</summary>
    private sealed class GateDevice : VirtioDevice
    {
        public GateDevice()
            : base(PciEchoDevice.TypeId, 0, new ushort[] { 64 }, 0)
        {
        }

        public ManualResetEventSlim Entered { get; } = new();

        public ManualResetEventSlim Release { get; } = new();

        public int Completed => Volatile.Read(ref _completed);

        private int _completed;

        protected override void OnQueueNotified(VirtioQueue queue)
        {
            Entered.Set();
            Release.Wait(TimeSpan.FromSeconds(10));
            Interlocked.Increment(ref _completed);
        }
    }

    /// <summary>A context that keeps what is posted for the test to run.</summary>
    private sealed class RecordingContext : IDeviceContext
    {
        public List<Action> Posted { get; } = new();

        public bool Refuse { get; set; }

        public IGuestMemory Memory => throw new NotSupportedException();

        public void MapRegion(DeviceRegion region, ulong address) => throw new NotSupportedException();

        public void UnmapRegion(DeviceRegion region) => throw new NotSupportedException();

        public void Post(Action work) => throw new NotSupportedException();

        public bool TryPost(Action work)
        {
            if (Refuse)
            {
                return false;
            }

            Posted.Add(work);
            return true;
        }

        public bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion) => false;

        public void RunPosted()
        {
            Action[] work = Posted.ToArray();
            Posted.Clear();
            foreach (Action action in work)
            {
                action();
            }
        }
    }
}
