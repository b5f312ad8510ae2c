using System;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio;

/// <summary>The status state machine, feature negotiation, config space and reset, as a driver walks them.</summary>
[TestFixture]
public sealed class VirtioDeviceTests
{
    private const VirtioDeviceStatus Ack = VirtioDeviceStatus.Acknowledge;
    private const VirtioDeviceStatus Drv = VirtioDeviceStatus.Driver;
    private const VirtioDeviceStatus FeatOk = VirtioDeviceStatus.FeaturesOk;
    private const VirtioDeviceStatus DrvOk = VirtioDeviceStatus.DriverOk;

    [Test]
    public void Driver_walking_the_steps_in_order_reaches_DRIVER_OK()
    {
        var rig = new VirtioRig(VirtioFeatures.EventIndex);
        bool enabled = rig.Start();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(enabled, Is.True);
            Assert.That(rig.Device.Status, Is.EqualTo(Ack | Drv | FeatOk | DrvOk));
            Assert.That(rig.Device.IsNegotiated(VirtioFeatures.EventIndex | VirtioFeatures.Version1), Is.True);
            Assert.That(rig.Device.IsNegotiated(VirtioFeatures.RingPacked), Is.False);
        }
    }

    [TestCase(Drv, TestName = "DRIVER without ACKNOWLEDGE")]
    [TestCase(Ack | FeatOk, TestName = "FEATURES_OK without DRIVER")]
    [TestCase(Ack | Drv | DrvOk, TestName = "DRIVER_OK without FEATURES_OK")]
    public void A_status_write_that_skips_a_step_stops_before_it(VirtioDeviceStatus written)
    {
        var device = new EchoDevice(0);
        device.Attach(new TestTransport(new TestGuestRam(0, 4096)));
        device.WriteDriverFeatures(1, 1); // ignored anyway before DRIVER
        device.WriteStatus((byte)written);

        VirtioDeviceStatus expected = written switch
        {
            Drv => VirtioDeviceStatus.None,
            Ack | FeatOk => Ack,
            _ => Ack | Drv,
        };
        Assert.That(device.Status, Is.EqualTo(expected));
    }

    [Test]
    public void A_status_write_that_clears_a_bit_is_ignored()
    {
        var rig = new VirtioRig(0);
        rig.Device.WriteStatus((byte)(Ack | FeatOk)); // drops DRIVER
        Assert.That(rig.Device.Status, Is.EqualTo(Ack | Drv | FeatOk));
    }

    [Test]
    public void FAILED_is_taken_at_any_time_and_then_only_reset_moves_on()
    {
        var device = new EchoDevice(0);
        device.WriteStatus((byte)Ack);
        device.WriteStatus((byte)(Ack | VirtioDeviceStatus.Failed));
        device.WriteStatus((byte)(Ack | Drv | VirtioDeviceStatus.Failed));
        VirtioDeviceStatus failed = device.Status;
        device.WriteStatus(0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(failed, Is.EqualTo(Ack | VirtioDeviceStatus.Failed));
            Assert.That(device.Status, Is.EqualTo(VirtioDeviceStatus.None));
        }
    }

    [Test]
    public void The_driver_cannot_set_DEVICE_NEEDS_RESET()
    {
        var device = new EchoDevice(0);
        device.WriteStatus((byte)(Ack | VirtioDeviceStatus.DeviceNeedsReset));
        Assert.That(device.Status, Is.EqualTo(Ack));
    }

    [Test]
    public void FEATURES_OK_is_refused_when_the_driver_accepts_a_bit_not_offered()
    {
        var device = new EchoDevice(VirtioFeatures.EventIndex);
        device.WriteStatus((byte)Ack);
        device.WriteStatus((byte)(Ack | Drv));
        device.WriteDriverFeatures(0, (uint)(VirtioFeatures.IndirectDescriptors | VirtioFeatures.EventIndex));
        device.WriteDriverFeatures(1, 1); // VERSION_1
        device.WriteStatus((byte)(Ack | Drv | FeatOk));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Status, Is.EqualTo(Ack | Drv));
            Assert.That(device.IsNegotiated(VirtioFeatures.EventIndex), Is.False);
        }
    }

    [Test]
    public void FEATURES_OK_is_refused_without_VERSION_1()
    {
        var device = new EchoDevice(VirtioFeatures.EventIndex);
        device.WriteStatus((byte)Ack);
        device.WriteStatus((byte)(Ack | Drv));
        device.WriteDriverFeatures(0, (uint)VirtioFeatures.EventIndex);
        device.WriteStatus((byte)(Ack | Drv | FeatOk));
        Assert.That(device.Status, Is.EqualTo(Ack | Drv));
    }

    [Test]
    public void Features_are_frozen_after_FEATURES_OK_and_queues_unconfigurable_before_it()
    {
        var device = new EchoDevice(VirtioFeatures.EventIndex);
        device.Attach(new TestTransport(new TestGuestRam(0, 4096)));
        device.WriteStatus((byte)Ack);
        device.WriteStatus((byte)(Ack | Drv));
        device.SetQueueSize(0, 8); // before FEATURES_OK: ignored
        device.WriteDriverFeatures(1, 1);
        device.WriteStatus((byte)(Ack | Drv | FeatOk));
        device.WriteDriverFeatures(0, (uint)VirtioFeatures.EventIndex);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.DriverFeatures, Is.EqualTo(VirtioFeatures.Version1));
            Assert.That(device.GetQueue(0).Size, Is.EqualTo(256));
        }
    }

    [Test]
    public void Offered_features_always_include_VERSION_1_and_read_as_two_words()
    {
        var device = new EchoDevice(VirtioFeatures.RingPacked);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.OfferedFeatures, Is.EqualTo(VirtioFeatures.Version1 | VirtioFeatures.RingPacked | EchoDevice.DeviceFeature));
            Assert.That(device.ReadDeviceFeatures(0), Is.EqualTo((uint)EchoDevice.DeviceFeature));
            Assert.That(device.ReadDeviceFeatures(1), Is.EqualTo(0b101u));
            Assert.That(device.ReadDeviceFeatures(2), Is.Zero);
        }
    }

    [Test]
    public void Offering_ACCESS_PLATFORM_or_an_unimplemented_ring_feature_is_refused()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => new EchoDevice(VirtioFeatures.AccessPlatform), Throws.ArgumentException.With.Message.Contains("grant"));
            Assert.That(() => new EchoDevice(1UL << 35), Throws.ArgumentException); // IN_ORDER
            Assert.That(() => new EchoDevice(1UL << 45), Throws.ArgumentException); // reserved for the future
            Assert.That(new EchoDevice(1UL << 50).OfferedFeatures & (1UL << 50), Is.Not.Zero); // a device-type bit
        }
    }

    [Test]
    public void Config_reads_past_the_end_are_zero_and_changes_move_the_generation_and_interrupt()
    {
        var rig = new VirtioRig(0);
        rig.Start();
        uint before = rig.Device.ConfigGeneration;
        rig.Device.Change(0x3C);
        Span<byte> read = stackalloc byte[4];
        rig.Device.ReadConfig(0, read);
        Span<byte> past = stackalloc byte[4];
        past.Fill(0xFF);
        rig.Device.ReadConfig(6, past);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Device.ConfigGeneration, Is.EqualTo(before + 1));
            Assert.That(rig.Transport.ConfigChanges, Is.EqualTo(1));
            Assert.That(read.ToArray(), Is.EqualTo(new byte[] { 0xA5, 0x3C, 0, 0 }));
            Assert.That(past.ToArray(), Is.EqualTo(new byte[4]));
        }
    }

    [Test]
    public void Writing_0_resets_everything()
    {
        var rig = new VirtioRig(VirtioFeatures.EventIndex, size: 8);
        GuestSplitVirtqueue driver = rig.StartSplit();
        driver.Post(new[] { new GuestBuffer(VirtioRig.Buffers, 4, false), new GuestBuffer(VirtioRig.Buffers + 64, 4, true) });
        rig.Kick();
        rig.Device.WriteStatus(0);
        VirtioQueue queue = rig.Queue;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Device.Status, Is.EqualTo(VirtioDeviceStatus.None));
            Assert.That(rig.Device.DriverFeatures, Is.Zero);
            Assert.That(rig.Device.Resets, Is.EqualTo(1));
            Assert.That(queue.IsEnabled, Is.False);
            Assert.That(queue.Size, Is.EqualTo(queue.MaxSize));
            Assert.That(queue.DescriptorArea | queue.DriverArea | queue.DeviceArea, Is.Zero);
        }

        // Indices are zero again: the same rings, reinitialised by the driver, are used from index 0.
        rig.Ram.Span(VirtioRig.DriverArea, 4096).Clear();
        rig.Ram.Span(VirtioRig.DeviceArea, 4096).Clear();
        rig.Negotiate();
        rig.ConfigureQueue(8);
        GuestSplitVirtqueue second = rig.StartSplit();
        second.Post(new[] { new GuestBuffer(VirtioRig.Buffers, 4, false), new GuestBuffer(VirtioRig.Buffers + 64, 4, true) });
        rig.Kick();
        Assert.That(second.UsedIndex, Is.EqualTo(1));
    }

    [Test]
    public void Queue_notifications_before_DRIVER_OK_or_for_unknown_queues_are_ignored()
    {
        var rig = new VirtioRig(0, size: 8);
        rig.Device.EnableQueue(0);
        var driver = rig.SplitDriver();
        driver.Post(new[] { new GuestBuffer(VirtioRig.Buffers, 4, false) });
        rig.Kick();
        int beforeDriverOk = rig.Device.Notified;
        rig.Device.WriteStatus((byte)(rig.Device.Status | DrvOk));
        rig.Device.NotifyQueue(7);
        rig.Device.NotifyQueue(-1);
        rig.Device.SetQueueSize(9, 4);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(beforeDriverOk, Is.Zero);
            Assert.That(rig.Device.Notified, Is.Zero);
            Assert.That(rig.Device.Status & VirtioDeviceStatus.DeviceNeedsReset, Is.EqualTo(VirtioDeviceStatus.None));
        }
    }
}
