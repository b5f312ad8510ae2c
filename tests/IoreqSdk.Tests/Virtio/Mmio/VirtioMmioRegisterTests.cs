using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Mmio;
using NUnit.Framework;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Tests.Virtio.Mmio;

/// <summary>Every register of the virtio-mmio block, as the transport answers the dispatcher (virtio 1.2 §4.2.2).</summary>
[TestFixture]
public sealed class VirtioMmioRegisterTests
{
    private const ulong Offered = VirtioFeatures.EventIndex | VirtioFeatures.RingPacked;

    [Test]
    public void Identity_registers_read_magic_version_2_device_and_vendor()
    {
        var rig = new MmioRig(new EchoDevice(Offered));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Read(R.MagicValue), Is.EqualTo(0x74726976u));
            Assert.That(rig.Read(R.Version), Is.EqualTo(2u));
            Assert.That(rig.Read(R.DeviceId), Is.EqualTo((uint)EchoDevice.TypeId));
            Assert.That(rig.Read(R.VendorId), Is.EqualTo(VirtioMmioTransport.DefaultVendorId));
        }
    }

    [Test]
    public void Device_features_are_shown_a_word_at_a_time_by_the_select()
    {
        var rig = new MmioRig(new EchoDevice(Offered));
        ulong offered = rig.Device.OfferedFeatures;
        uint low = rig.Read(R.DeviceFeatures);
        rig.Write(R.DeviceFeaturesSel, 1);
        uint high = rig.Read(R.DeviceFeatures);
        rig.Write(R.DeviceFeaturesSel, 2);
        uint beyond = rig.Read(R.DeviceFeatures);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(low, Is.EqualTo((uint)offered));
            Assert.That(high, Is.EqualTo((uint)(offered >> 32)));
            Assert.That(high & 1, Is.EqualTo(1u), "VERSION_1 is bit 32");
            Assert.That(beyond, Is.Zero);
        }
    }

    [Test]
    public void Driver_features_reach_the_device_between_DRIVER_and_FEATURES_OK_only()
    {
        var rig = new MmioRig(new EchoDevice(Offered));
        rig.Write(R.DriverFeatures, 0xFFFF_FFFF);
        ulong beforeDriver = rig.Device.DriverFeatures;
        rig.Negotiate(VirtioFeatures.EventIndex);
        ulong negotiated = rig.Device.DriverFeatures;
        rig.Write(R.DriverFeaturesSel, 0);
        rig.Write(R.DriverFeatures, 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(beforeDriver, Is.Zero);
            Assert.That(negotiated, Is.EqualTo(VirtioFeatures.EventIndex | VirtioFeatures.Version1));
            Assert.That(rig.Device.DriverFeatures, Is.EqualTo(negotiated), "after FEATURES_OK the set is fixed");
            Assert.That((VirtioDeviceStatus)rig.Read(R.Status) & VirtioDeviceStatus.FeaturesOk, Is.EqualTo(VirtioDeviceStatus.FeaturesOk));
        }
    }

    [Test]
    public void QueueNumMax_is_each_queue_maximum_and_0_past_the_last_queue()
    {
        var rig = new MmioRig(new EchoDevice(0, maxSize: 128));
        uint[] max = new uint[4];
        uint[] selectors = { 0, 1, 2, 0xFFFF_FFFF };
        for (int i = 0; i < selectors.Length; i++)
        {
            rig.Write(R.QueueSel, selectors[i]);
            max[i] = rig.Read(R.QueueNumMax);
        }

        Assert.That(max, Is.EqualTo(new uint[] { 128, 128, 0, 0 }));
    }

    [Test]
    public void Queue_registers_program_the_selected_queue_and_QueueReady_reads_back()
    {
        var rig = new MmioRig(new EchoDevice(0));
        rig.Negotiate(0);
        rig.Write(R.QueueSel, 1);
        rig.Write(R.QueueNum, 32);
        rig.WriteAddress(R.QueueDescLow, 0x1_2345_6780);
        rig.WriteAddress(R.QueueDriverLow, 0x2_0000_1002);
        rig.WriteAddress(R.QueueDeviceLow, 0x3_0000_2004);
        uint readyBefore = rig.Read(R.QueueReady);
        VirtioQueue queue = rig.Device.GetQueue(1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(queue.Size, Is.EqualTo(32));
            Assert.That(queue.DescriptorArea, Is.EqualTo(0x1_2345_6780UL));
            Assert.That(queue.DriverArea, Is.EqualTo(0x2_0000_1002UL));
            Assert.That(queue.DeviceArea, Is.EqualTo(0x3_0000_2004UL));
            Assert.That(readyBefore, Is.Zero);
            Assert.That(rig.Device.GetQueue(0).Size, Is.EqualTo(256), "queue 0 untouched");
        }

        // Ready, in guest RAM this time; then the queue's registers are frozen until it is disabled.
        rig.WriteAddress(R.QueueDescLow, VirtioRig.DescriptorArea);
        rig.WriteAddress(R.QueueDriverLow, VirtioRig.DriverArea);
        rig.WriteAddress(R.QueueDeviceLow, VirtioRig.DeviceArea);
        rig.Write(R.QueueReady, 1);
        uint ready = rig.Read(R.QueueReady);
        rig.Write(R.QueueNum, 8);
        rig.WriteAddress(R.QueueDescLow, 0x5000);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ready, Is.EqualTo(1u));
            Assert.That(queue.Size, Is.EqualTo(32), "QueueNum while ready is ignored");
            Assert.That(queue.DescriptorArea, Is.EqualTo(VirtioRig.DescriptorArea), "QueueDesc while ready is ignored");
        }

        rig.Write(R.QueueReady, 0);
        Assert.That(rig.Read(R.QueueReady), Is.Zero);
        Assert.That(queue.IsEnabled, Is.False);
    }

    [Test]
    public void Write_only_and_reserved_registers_read_0_and_ignore_writes()
    {
        var rig = new MmioRig(new EchoDevice(0));
        rig.Write(R.QueueSel, 1);
        int[] writeOnly = { R.DeviceFeaturesSel, R.DriverFeatures, R.DriverFeaturesSel, R.QueueSel, R.QueueNum, R.QueueNotify, R.InterruptAck, R.QueueDescLow, R.QueueDescHigh, R.QueueDriverLow, R.QueueDriverHigh, R.QueueDeviceLow, R.QueueDeviceHigh, R.ShmSel, R.QueueReset, 0x018, 0x040, 0x0C4, 0x0F8 };
        var values = new System.Collections.Generic.List<uint>();
        foreach (int offset in writeOnly)
        {
            values.Add(rig.Read(offset));
        }

        // Writes to read-only registers change nothing the driver can see.
        rig.Write(R.MagicValue, 0);
        rig.Write(R.Version, 1);
        rig.Write(R.DeviceId, 9);
        rig.Write(R.InterruptStatus, 3);
        rig.Write(R.ConfigGeneration, 7);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(values, Has.All.Zero);
            Assert.That(rig.Read(R.MagicValue), Is.EqualTo(R.MagicValueExpected));
            Assert.That(rig.Read(R.Version), Is.EqualTo(2u));
            Assert.That(rig.Read(R.DeviceId), Is.EqualTo((uint)EchoDevice.TypeId));
            Assert.That(rig.Read(R.InterruptStatus), Is.Zero);
            Assert.That(rig.Read(R.ConfigGeneration), Is.Zero);
        }
    }

    [Test]
    public void Shared_memory_registers_report_no_region()
    {
        var rig = new MmioRig(new EchoDevice(0));
        rig.Write(R.ShmSel, 0);
        uint[] first = { rig.Read(R.ShmLenLow), rig.Read(R.ShmLenHigh), rig.Read(R.ShmBaseLow), rig.Read(R.ShmBaseHigh) };
        rig.Write(R.ShmSel, 5);
        Assert.That(first, Has.All.EqualTo(uint.MaxValue), "a length of -1: no such region");
        Assert.That(rig.Read(R.ShmLenLow), Is.EqualTo(uint.MaxValue));
    }

    [Test]
    public void Config_space_reads_little_endian_at_each_width_and_0_past_its_end()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Read(R.Config, 1), Is.EqualTo(0xA5u));
            Assert.That(rig.Read(R.Config, 2), Is.EqualTo(0x00A5u));
            Assert.That(rig.Read(R.Config, 4), Is.EqualTo(0x0000_00A5u));
            Assert.That(rig.Read(R.Config + 6, 4), Is.Zero, "straddles the 8-byte config's end: the bytes past it read 0");
            Assert.That(rig.Read(R.Config + 8, 4), Is.Zero);
            Assert.That(rig.Read(0x1FC, 4), Is.Zero, "the block's last word");
        }

        rig.Write(R.Config + 0x80, 0x1234, 2);
        Assert.That(rig.Read(R.Config + 0x80, 2), Is.Zero, "a write outside the config space goes nowhere");
    }

    [Test]
    public void ConfigGeneration_moves_when_the_device_changes_its_config()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        uint before = rig.Read(R.ConfigGeneration);
        device.Change(0x42);
        uint after = rig.Read(R.ConfigGeneration);
        Assert.That(after, Is.Not.EqualTo(before));
        Assert.That(rig.Read(R.Config + 1, 1), Is.EqualTo(0x42u));
    }

    [TestCase(1, R.Status)]
    [TestCase(2, R.Status)]
    [TestCase(1, R.MagicValue)]
    [TestCase(2, R.MagicValue + 2)]
    [TestCase(4, R.MagicValue + 2)]
    [TestCase(4, R.QueueNotify + 1)]
    public void Control_registers_refuse_anything_but_aligned_32_bit_accesses(int size, int offset)
    {
        var rig = new MmioRig(new EchoDevice(0));
        rig.Start();
        uint read = rig.Read(offset, size);
        rig.Write(offset, 0, size);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(read, Is.EqualTo(uint.MaxValue));
            Assert.That(rig.Transport.RefusedAccesses, Is.EqualTo(2));
            Assert.That(rig.Device.Status & VirtioDeviceStatus.DriverOk, Is.EqualTo(VirtioDeviceStatus.DriverOk), "a narrow write of 0 is no reset");
            Assert.That(rig.Context.Posts, Is.Zero, "nor a notify");
        }
    }

    [Test]
    public void Status_reads_back_and_a_write_that_skips_a_step_is_refused()
    {
        var rig = new MmioRig(new EchoDevice(0));
        rig.Status(VirtioDeviceStatus.Driver);
        uint skipped = rig.Read(R.Status);
        rig.Status(VirtioDeviceStatus.Acknowledge);
        uint acknowledged = rig.Read(R.Status);
        rig.Status(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.DriverOk);
        uint noFeatures = rig.Read(R.Status);
        rig.Write(R.Status, 0x100);
        uint upperOnly = rig.Read(R.Status);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(skipped, Is.Zero, "DRIVER before ACKNOWLEDGE");
            Assert.That(acknowledged, Is.EqualTo(1u));
            Assert.That(noFeatures, Is.EqualTo(3u), "DRIVER_OK before FEATURES_OK is not taken");
            Assert.That(upperOnly, Is.EqualTo(3u), "bits above the status byte are no reset");
        }
    }

    [Test]
    public void A_status_write_of_0_resets_the_device_and_the_transport()
    {
        var device = new EchoDevice(Offered);
        var rig = new MmioRig(device);
        rig.Start(VirtioFeatures.EventIndex);
        device.Change(1);
        rig.Write(R.DeviceFeaturesSel, 1);
        rig.Write(R.QueueSel, 1);
        rig.Write(R.QueueNotify, 0);
        bool assertedBefore = rig.Line.IsAsserted;

        rig.Write(R.Status, 0);
        int ran = rig.Context.RunPosted();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(assertedBefore, Is.True);
            Assert.That(rig.Read(R.Status), Is.Zero);
            Assert.That(rig.Read(R.InterruptStatus), Is.Zero);
            Assert.That(rig.Line.IsAsserted, Is.False);
            Assert.That(rig.Read(R.QueueReady), Is.Zero, "QueueSel is back at 0, and queue 0 is no longer ready");
            Assert.That(device.GetQueue(0).IsEnabled, Is.False);
            Assert.That(rig.Read(R.DeviceFeatures), Is.EqualTo((uint)device.OfferedFeatures), "DeviceFeaturesSel is back at 0");
            Assert.That(device.DriverFeatures, Is.Zero);
            Assert.That(device.Resets, Is.EqualTo(1));
            Assert.That(ran, Is.EqualTo(1), "the notify's pass was posted before the reset");
            Assert.That(device.Notified, Is.Zero, "and finds nothing to do after it");
        }
    }

    [Test]
    public void Arm64_slots_follow_libxl_from_GUEST_VIRTIO_MMIO_BASE_and_SPI_33()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(VirtioMmioTransport.Arm64Address(0), Is.EqualTo(0x0200_0000UL));
            Assert.That(VirtioMmioTransport.Arm64Address(2), Is.EqualTo(0x0200_0400UL));
            Assert.That(VirtioMmioTransport.Arm64Spi(0), Is.EqualTo(33u));
            Assert.That(VirtioMmioTransport.Arm64Spi(10), Is.EqualTo(43u));
            Assert.That(() => VirtioMmioTransport.Arm64Spi(11), Throws.TypeOf<System.ArgumentOutOfRangeException>(), "SPIs 33-43 only");
            Assert.That(() => VirtioMmioTransport.Arm64Address(2048), Throws.TypeOf<System.ArgumentOutOfRangeException>(), "the 1 MiB window holds 2048 blocks");
        }
    }

    [Test]
    public void The_device_tree_node_is_the_one_libxl_writes()
    {
        string node = VirtioMmioTransport.DescribeDeviceTreeNodeAt(VirtioMmioTransport.Arm64Address(1), VirtioMmioTransport.Arm64Spi(1));
        Assert.That(node, Is.EqualTo(
            "virtio@2000200 {\n" +
            "\tcompatible = \"virtio,mmio\";\n" +
            "\treg = <0x0 0x2000200 0x0 0x200>;\n" +
            "\tinterrupts = <0x0 0x2 0xf01>;\n" +
            "\tinterrupt-parent = <0xfde8>;\n" +
            "\tdma-coherent;\n" +
            "};\n"));
        Assert.That(() => VirtioMmioTransport.DescribeDeviceTreeNodeAt(0x0200_0000, 31), Throws.TypeOf<System.ArgumentOutOfRangeException>());
    }

    [Test]
    public void A_block_off_its_0x200_boundary_or_a_device_on_another_transport_is_refused()
    {
        var line = IoreqSdk.Devices.InterruptLine.Create("x", _ => { });
        var device = new EchoDevice(0);
        _ = new VirtioMmioTransport(device, 0x0200_0000, line);
        Assert.That(() => new VirtioMmioTransport(new EchoDevice(0), 0x0200_0100, line), Throws.TypeOf<System.ArgumentOutOfRangeException>());
        Assert.That(() => new VirtioMmioTransport(device, 0x0200_0200, line), Throws.ArgumentException.With.Message.Contains("attached"));
    }
}
