using System;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Infrastructure;
using IoreqSdk.Virtio;
using NUnit.Framework;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Tests.Virtio.Mmio;

/// <summary>Interrupt status and the line, and doorbells deferred past the guest's write (unit level, one thread).</summary>
[TestFixture]
public sealed class VirtioMmioNotifyTests
{
    private const ulong In = VirtioRig.Buffers;
    private const ulong Out = VirtioRig.Buffers + 0x1_0000;

    [Test]
    public void A_used_buffer_sets_bit_0_and_asserts_the_line_until_acknowledged()
    {
        var rig = new MmioRig(new EchoDevice(0));
        rig.Start();
        var driver = new GuestSplitVirtqueue(rig.Ram, 16, VirtioRig.DescriptorArea, VirtioRig.DriverArea, VirtioRig.DeviceArea, eventIndex: false);
        rig.Ram.SetU32(In, 0xC0FFEE);
        ushort id = driver.Post(new GuestBuffer[] { new(In, 4, false), new(Out, 4, true) });
        rig.Write(R.QueueNotify, 0);
        bool assertedBeforePass = rig.Line.IsAsserted;
        rig.Context.RunPosted();
        uint status = rig.Read(R.InterruptStatus);
        bool asserted = rig.Line.IsAsserted;
        bool used = driver.TryTakeUsed(out ushort usedId, out uint length);
        rig.Write(R.InterruptAck, status);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(assertedBeforePass, Is.False, "nothing happens until the pass runs");
            Assert.That(status, Is.EqualTo(R.InterruptUsedBuffer));
            Assert.That(asserted, Is.True);
            Assert.That(used && usedId == id && length == 4, Is.True);
            Assert.That(rig.Ram.U32(Out), Is.EqualTo(0xC0FFEEu));
            Assert.That(rig.Read(R.InterruptStatus), Is.Zero);
            Assert.That(rig.Line.IsAsserted, Is.False);
            Assert.That(rig.Line.Assertions, Is.EqualTo(1));
        }
    }

    [Test]
    public void The_line_stays_asserted_until_the_last_status_bit_is_acknowledged()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Start();
        var driver = new GuestSplitVirtqueue(rig.Ram, 16, VirtioRig.DescriptorArea, VirtioRig.DriverArea, VirtioRig.DeviceArea, eventIndex: false);
        driver.Post(new GuestBuffer[] { new(In, 4, false), new(Out, 4, true) });
        rig.Write(R.QueueNotify, 0);
        rig.Context.RunPosted();
        device.Change(7);
        uint both = rig.Read(R.InterruptStatus);
        rig.Write(R.InterruptAck, R.InterruptUsedBuffer);
        uint afterFirst = rig.Read(R.InterruptStatus);
        bool stillAsserted = rig.Line.IsAsserted;
        rig.Write(R.InterruptAck, 0xFFFF_FFFC);
        bool afterIgnoredBits = rig.Line.IsAsserted;
        rig.Write(R.InterruptAck, R.InterruptConfigChange);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(both, Is.EqualTo(R.InterruptUsedBuffer | R.InterruptConfigChange));
            Assert.That(afterFirst, Is.EqualTo(R.InterruptConfigChange));
            Assert.That(stillAsserted, Is.True);
            Assert.That(afterIgnoredBits, Is.True, "acknowledging bits that are not set clears nothing");
            Assert.That(rig.Read(R.InterruptStatus), Is.Zero);
            Assert.That(rig.Line.IsAsserted, Is.False);
            Assert.That(rig.Line.Assertions, Is.EqualTo(2), "one rise for the first event, one more when an ack left the second pending (an edge-triggered line needs it); none for the ack that cleared nothing");
        }
    }

    [Test]
    public void A_notify_is_answered_first_and_the_queue_processed_in_the_posted_pass()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Start();
        rig.Write(R.QueueNotify, 0);
        int notifiedDuringWrite = device.Notified;
        int waiting = rig.Context.Waiting;
        rig.Context.RunPosted();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(notifiedDuringWrite, Is.Zero);
            Assert.That(waiting, Is.EqualTo(1));
            Assert.That(device.Notified, Is.EqualTo(1));
            Assert.That(rig.Transport.DeferredNotifyPasses, Is.EqualTo(1));
        }
    }

    [Test]
    public void Notifies_before_the_pass_coalesce_into_one_post_that_processes_each_queue_once()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Start(queues: 2);
        rig.Write(R.QueueNotify, 0);
        rig.Write(R.QueueNotify, 1);
        rig.Write(R.QueueNotify, 0);
        int posts = rig.Context.Posts;
        rig.Context.RunPosted();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(posts, Is.EqualTo(1));
            Assert.That(device.Notified, Is.EqualTo(2), "queue 0 once, queue 1 once");
        }
    }

    [Test]
    public void A_refused_post_processes_the_queue_inside_the_write_rather_than_lose_the_notify()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Start();
        rig.Context.Capacity = 0;
        rig.Write(R.QueueNotify, 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Context.Refusals, Is.EqualTo(1));
            Assert.That(device.Notified, Is.EqualTo(1));
            Assert.That(rig.Transport.InlineNotifyPasses, Is.EqualTo(1));
        }

        // The next notify, with room again, is deferred as usual.
        rig.Context.Capacity = 64;
        rig.Write(R.QueueNotify, 0);
        Assert.That(device.Notified, Is.EqualTo(1));
        rig.Context.RunPosted();
        Assert.That(device.Notified, Is.EqualTo(2));
    }

    [Test]
    public void A_pass_that_never_runs_is_posted_again_after_the_stale_threshold()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Start();
        for (int i = 0; i <= DeferredQueueNotifications.StalePassThreshold; i++)
        {
            rig.Write(R.QueueNotify, 0);
        }

        int posts = rig.Context.Posts;
        rig.Context.RunPosted();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(posts, Is.EqualTo(2), "the first pass (the threshold's worth coalesced into it), and one more once it was taken as lost");
            Assert.That(device.Notified, Is.EqualTo(1), "the second pass found nothing pending");
        }
    }

    [TestCase(2u)]
    [TestCase(0xFFFF_FFFFu)]
    [TestCase(0x8000_0000u)]
    public void A_notify_for_a_queue_the_device_lacks_is_ignored(uint queue)
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Start();
        rig.Write(R.QueueNotify, queue);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Context.Posts, Is.Zero);
            Assert.That(rig.Transport.IgnoredNotifies, Is.EqualTo(1));
            Assert.That(device.Notified, Is.Zero);
        }
    }

    [Test]
    public void A_notify_before_DRIVER_OK_reaches_no_queue()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Negotiate(0);
        rig.SetUpQueue(0, 16);
        rig.Write(R.QueueNotify, 0);
        rig.Context.RunPosted();
        Assert.That(device.Notified, Is.Zero);
    }

    [Test]
    public void Queue_registers_of_a_missing_queue_change_nothing()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Negotiate(0);
        rig.Write(R.QueueSel, 7);
        rig.Write(R.QueueNum, 8);
        rig.WriteAddress(R.QueueDescLow, 0x1000);
        rig.Write(R.QueueReady, 1);
        uint ready = rig.Read(R.QueueReady);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ready, Is.Zero);
            Assert.That(device.GetQueue(0).Size, Is.EqualTo(256));
            Assert.That(device.GetQueue(0).DescriptorArea, Is.Zero);
            Assert.That(device.GetQueue(1).DescriptorArea, Is.Zero);
            Assert.That(device.Status & VirtioDeviceStatus.DeviceNeedsReset, Is.EqualTo(VirtioDeviceStatus.None));
        }
    }

    [Test]
    public void A_queue_size_beyond_16_bits_is_refused_when_the_queue_is_enabled()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Negotiate(0);
        rig.Write(R.QueueSel, 0);
        rig.Write(R.QueueNum, 0x1_0010);
        rig.WriteAddress(R.QueueDescLow, VirtioRig.DescriptorArea);
        rig.WriteAddress(R.QueueDriverLow, VirtioRig.DriverArea);
        rig.WriteAddress(R.QueueDeviceLow, VirtioRig.DeviceArea);
        rig.Write(R.QueueReady, 1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Read(R.QueueReady), Is.Zero);
            Assert.That(device.GetQueue(0).Error, Is.EqualTo(VirtioQueueError.InvalidSize));
            Assert.That(device.Status & VirtioDeviceStatus.DeviceNeedsReset, Is.EqualTo(VirtioDeviceStatus.DeviceNeedsReset));
        }
    }

    [Test]
    public void A_malformed_chain_breaks_the_queue_and_raises_a_config_change_interrupt()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Start();
        var driver = new GuestSplitVirtqueue(rig.Ram, 16, VirtioRig.DescriptorArea, VirtioRig.DriverArea, VirtioRig.DeviceArea, eventIndex: false);
        driver.PublishHead(200);
        rig.Write(R.QueueNotify, 0);
        rig.Context.RunPosted();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.GetQueue(0).Error, Is.EqualTo(VirtioQueueError.DescriptorIndexOutOfRange));
            Assert.That(rig.Read(R.Status) & (uint)VirtioDeviceStatus.DeviceNeedsReset, Is.EqualTo((uint)VirtioDeviceStatus.DeviceNeedsReset));
            Assert.That(rig.Read(R.InterruptStatus), Is.EqualTo(R.InterruptConfigChange));
            Assert.That(rig.Line.IsAsserted, Is.True);
        }

        // The driver's answer, a reset, clears it all.
        rig.Write(R.Status, 0);
        Assert.That(rig.Read(R.Status), Is.Zero);
        Assert.That(rig.Line.IsAsserted, Is.False);
    }

    [Test]
    public void A_device_with_more_config_than_the_block_holds_is_refused()
    {
        Assert.That(() => new IoreqSdk.Virtio.Mmio.VirtioMmioTransport(new BigConfigDevice(), MmioRig.Base, IoreqSdk.Devices.InterruptLine.Create("x", _ => { })),
            Throws.ArgumentException.With.Message.Contains("does not fit"));
    }

    [Test]
    [Category("Allocation")]
    public void Notify_pop_push_and_interrupt_allocate_nothing()
    {
        var rig = new MmioRig(new EchoDevice(VirtioFeatures.EventIndex));
        rig.Start(VirtioFeatures.EventIndex);
        var driver = new GuestSplitVirtqueue(rig.Ram, 16, VirtioRig.DescriptorArea, VirtioRig.DriverArea, VirtioRig.DeviceArea, eventIndex: true);
        GuestBuffer[] buffer = { new(In, 16, false), new(Out, 16, true) };
        int Rounds(int count)
        {
            int done = 0;
            for (int i = 0; i < count; i++)
            {
                driver.Post(buffer);
                if (driver.KickPrepare())
                {
                    rig.Write(R.QueueNotify, 0);
                }

                rig.Context.RunPosted();
                uint status = rig.Read(R.InterruptStatus);
                rig.Write(R.InterruptAck, status);
                done += driver.TryTakeUsed(out _, out uint length) && length == 16 && status == R.InterruptUsedBuffer ? 1 : 0;
            }

            return done;
        }

        SteadyStateAllocations.AssertNone(Rounds, 10_000, "round");
    }

    private sealed class BigConfigDevice : VirtioDevice
    {
        public BigConfigDevice()
            : base(1, 0, new ushort[] { 8 }, configSize: 0x101)
        {
        }

        protected override void OnQueueNotified(VirtioQueue queue)
        {
        }
    }
}
