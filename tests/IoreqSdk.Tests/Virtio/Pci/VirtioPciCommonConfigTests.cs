using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Pci;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>Every field of struct virtio_pci_common_cfg as a driver reads and writes it (virtio 1.2 §4.1.4.3), hostile accesses included.</summary>
[TestFixture]
public sealed class VirtioPciCommonConfigTests
{
    private const ulong DeviceFeatureSelect = 0x00;
    private const ulong DeviceFeature = 0x04;
    private const ulong DriverFeatureSelect = 0x08;
    private const ulong DriverFeature = 0x0C;
    private const ulong ConfigMsixVector = 0x10;
    private const ulong NumQueues = 0x12;
    private const ulong DeviceStatus = 0x14;
    private const ulong ConfigGeneration = 0x15;
    private const ulong QueueSelect = 0x16;
    private const ulong QueueSize = 0x18;
    private const ulong QueueMsixVector = 0x1A;
    private const ulong QueueEnable = 0x1C;
    private const ulong QueueNotifyOff = 0x1E;
    private const ulong QueueDesc = 0x20;
    private const ulong QueueDriver = 0x28;
    private const ulong QueueDevice = 0x30;

    [Test]
    public void Feature_words_are_selected_and_negotiated()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86, new PciEchoDevice(VirtioFeatures.EventIndex));
        var d = rig.Driver;
        d.WriteStatus(1);
        d.WriteStatus(3);
        ulong[] words = new ulong[3];
        for (uint select = 0; select < 3; select++)
        {
            d.WriteCommon(DeviceFeatureSelect, 4, select);
            words[select] = d.ReadCommon(DeviceFeature, 4);
        }

        d.WriteCommon(DriverFeatureSelect, 4, 1);
        d.WriteCommon(DriverFeature, 4, 1);
        d.WriteCommon(DriverFeatureSelect, 4, 0);
        d.WriteCommon(DriverFeature, 4, (uint)VirtioFeatures.EventIndex);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(words, Is.EqualTo(new ulong[] { VirtioFeatures.EventIndex, 1, 0 }), "bits 0-31, 32-63 (VERSION_1), nothing beyond");
            Assert.That(d.ReadCommon(DeviceFeatureSelect, 4), Is.EqualTo(2UL));
            Assert.That(d.ReadCommon(DriverFeatureSelect, 4), Is.Zero);
            Assert.That(d.ReadCommon(DriverFeature, 4), Is.EqualTo(VirtioFeatures.EventIndex));
            Assert.That(rig.Device.DriverFeatures, Is.EqualTo(VirtioFeatures.EventIndex | VirtioFeatures.Version1));
            Assert.That(d.ReadCommon(NumQueues, 2), Is.EqualTo(2UL));
        }
    }

    [Test]
    public void Device_status_follows_the_device_and_FEATURES_OK_is_refused_without_VERSION_1()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        var d = rig.Driver;
        d.WriteStatus(1);
        d.WriteStatus(3);
        d.WriteDriverFeatures(0);
        d.WriteStatus(3 | 8);
        byte refused = d.ReadStatus();
        byte accepted = rig.Negotiate();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(refused, Is.EqualTo((byte)3));
            Assert.That(accepted, Is.EqualTo((byte)(1 | 2 | 8)));
        }
    }

    [Test]
    public void Queue_fields_are_programmed_through_the_selector_and_read_back()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        var d = rig.Driver;
        d.WriteCommon(QueueSelect, 2, 1);
        d.WriteCommon(QueueSize, 2, 8);
        ulong sizeBeforeFeatures = d.ReadCommon(QueueSize, 2);
        rig.Negotiate();

        d.WriteCommon(QueueSelect, 2, 1);
        d.WriteCommon(QueueSize, 2, 32);
        d.WriteCommon(QueueDesc, 4, 0x1234_5000);
        d.WriteCommon(QueueDesc + 4, 4, 0x0000_0001);
        d.WriteCommon(QueueDriver, 8, 0x2_0000_1000);
        d.WriteCommon(QueueDevice + 4, 4, 0x3);
        d.WriteCommon(QueueDevice, 4, 0x9000);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(sizeBeforeFeatures, Is.EqualTo(256UL), "queue_size reads the maximum until the driver sets it, and is not taken before FEATURES_OK");
            Assert.That(d.ReadCommon(QueueSelect, 2), Is.EqualTo(1UL));
            Assert.That(d.ReadCommon(QueueSize, 2), Is.EqualTo(32UL));
            Assert.That(d.ReadCommon(QueueDesc, 8), Is.EqualTo(0x1_1234_5000UL));
            Assert.That(d.ReadCommon(QueueDesc, 4), Is.EqualTo(0x1234_5000UL));
            Assert.That(d.ReadCommon(QueueDesc + 4, 4), Is.EqualTo(1UL));
            Assert.That(d.ReadCommon(QueueDriver, 8), Is.EqualTo(0x2_0000_1000UL));
            Assert.That(d.ReadCommon(QueueDevice, 8), Is.EqualTo(0x3_0000_9000UL));
            Assert.That(d.ReadCommon(QueueNotifyOff, 2), Is.EqualTo(1UL));
            Assert.That(rig.Device.GetQueue(1).DescriptorArea, Is.EqualTo(0x1_1234_5000UL));
            Assert.That(rig.Device.GetQueue(0).Size, Is.EqualTo((ushort)256), "queue 0 untouched");
        }
    }

    [Test]
    public void Queue_enable_takes_1_and_ignores_0_and_fields_written_while_enabled()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        var d = rig.Driver;
        rig.Negotiate();
        rig.StartQueue(0);
        d.WriteCommon(QueueSelect, 2, 0);
        d.WriteCommon(QueueEnable, 2, 0);
        d.WriteCommon(QueueSize, 2, 4);
        d.WriteCommon(QueueDesc, 4, 0xDEAD_0000);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.ReadCommon(QueueEnable, 2), Is.EqualTo(1UL), "queue_enable 0 is not the driver's to write (queue_reset is not offered)");
            Assert.That(d.ReadCommon(QueueSize, 2), Is.EqualTo((ulong)VirtioPciRig.QueueSize));
            Assert.That(d.ReadCommon(QueueDesc, 8), Is.EqualTo(rig.DescriptorArea(0)));
            Assert.That(d.IsQueueEnabled(1), Is.False);
        }
    }

    [Test]
    public void A_queue_select_past_the_queues_reads_an_unavailable_queue_and_takes_no_writes()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        var d = rig.Driver;
        rig.Negotiate();
        foreach (ushort select in new ushort[] { 2, 0x7FFF, 0xFFFF })
        {
            d.WriteCommon(QueueSelect, 2, select);
            d.WriteCommon(QueueSize, 2, 4);
            d.WriteCommon(QueueDesc, 8, 0x1000);
            d.WriteCommon(QueueMsixVector, 2, 1);
            d.WriteCommon(QueueEnable, 2, 1);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(d.ReadCommon(QueueSelect, 2), Is.EqualTo((ulong)select));
                Assert.That(d.ReadCommon(QueueSize, 2), Is.Zero, "0: the queue is unavailable");
                Assert.That(d.ReadCommon(QueueEnable, 2), Is.Zero);
                Assert.That(d.ReadCommon(QueueNotifyOff, 2), Is.Zero);
                Assert.That(d.ReadCommon(QueueMsixVector, 2), Is.EqualTo((ulong)VirtioPciTransport.NoVector));
                Assert.That(d.ReadCommon(QueueDesc, 8), Is.Zero);
            }
        }

        Assert.That(rig.Device.GetQueue(0).Size, Is.EqualTo((ushort)256));
    }

    [Test]
    public void Accesses_of_the_wrong_width_or_past_the_structure_read_0_and_change_nothing()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        var d = rig.Driver;
        rig.Negotiate();
        d.WriteCommon(QueueSelect, 1, 1);         // a 16-bit field written as a byte
        d.WriteCommon(DeviceStatus, 2, 0);        // status and generation as one word: not a reset
        d.WriteCommon(DeviceFeatureSelect, 2, 5); // a 32-bit field as a word
        d.WriteCommon(QueueSize, 4, 0x0001_0004); // size and vector as one dword
        d.WriteCommon(0x38, 4, uint.MaxValue);    // past the structure
        d.WriteCommon(0xFF8, 8, ulong.MaxValue);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.ReadCommon(QueueSelect, 2), Is.Zero);
            Assert.That(d.ReadStatus(), Is.EqualTo((byte)(1 | 2 | 8)));
            Assert.That(d.ReadCommon(DeviceFeatureSelect, 4), Is.EqualTo(1UL), "as the negotiation left it");
            Assert.That(d.ReadCommon(QueueSize, 2), Is.EqualTo(256UL));
            Assert.That(d.ReadCommon(DeviceStatus, 4), Is.Zero, "a dword at the status byte is no field");
            Assert.That(d.ReadCommon(DeviceFeature, 2), Is.Zero);
            Assert.That(d.ReadCommon(DeviceFeature, 8), Is.Zero);
            Assert.That(d.ReadCommon(0x38, 4), Is.Zero);
            Assert.That(d.ReadCommon(0xFFC, 4), Is.Zero);
            Assert.That(rig.Guest.Server.Statistics.DeviceFaults, Is.Zero);
        }
    }

    [Test]
    public void The_config_generation_moves_when_the_device_changes_its_config([Values] GuestArchitecture architecture)
    {
        using var rig = new VirtioPciRig(architecture);
        var d = rig.Driver;
        rig.Start();
        uint before = d.ReadConfigGeneration();
        d.ConfigureQueue(1, VirtioPciRig.QueueSize, rig.DescriptorArea(1), rig.DriverArea(1), rig.DeviceArea(1));
        d.EnableQueue(1);
        d.Notify(1); // the echo device answers a kick of queue 1 with a config change

        Assert.That(SimulatedPciGuest.WaitUntil(() => d.InterruptPending), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.TakeInterrupts(), Is.EqualTo(GuestVirtioInterrupts.ConfigChange));
            Assert.That(d.ReadConfigGeneration(), Is.EqualTo(before + 1));
            Assert.That(d.ReadConfig(0, 4), Is.EqualTo(0x0000_01A5u), "config byte 1 is the device's new value");
        }
    }

    [Test]
    public void Device_config_is_read_and_written_in_bounds_only()
    {
        var device = new PciEchoDevice(configSize: 6);
        using var rig = new VirtioPciRig(GuestArchitecture.X86, device);
        var d = rig.Driver;
        uint whole = d.ReadConfig(0, 4);
        uint straddling = d.ReadConfig(4, 4);
        uint past = d.ReadConfig(8, 4);
        d.WriteConfig(4, 4, 0xFFFF_FFFF);   // reaches past the end: ignored
        d.WriteConfig(2, 2, 0xBEEF);
        d.WriteConfig(0x100, 4, 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(whole, Is.EqualTo(0xA5u));
            Assert.That(straddling, Is.EqualTo(0x5Au), "bytes past the end read 0");
            Assert.That(past, Is.Zero);
            Assert.That(device.LastConfigWrite, Is.EqualTo(new byte[] { 0xEF, 0xBE }));
            Assert.That(d.ReadConfig(0, 4), Is.EqualTo(0xBEEF_00A5u));
            Assert.That(d.ReadConfig(4, 2), Is.EqualTo(0x5Au));
        }
    }

    [Test]
    public void Writing_0_to_device_status_resets_device_and_transport([Values] GuestArchitecture architecture)
    {
        using var rig = new VirtioPciRig(architecture);
        var d = rig.Driver;
        var device = (PciEchoDevice)rig.Device;
        rig.Start();
        d.WriteCommon(DeviceFeatureSelect, 4, 1);
        d.WriteCommon(DriverFeatureSelect, 4, 1);
        d.WriteCommon(QueueSelect, 2, 1);
        d.WriteStatus(0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.ReadStatus(), Is.Zero, "the reset is complete when the write returns");
            Assert.That(device.Resets, Is.EqualTo(2), "the rig's own reset, and this one");
            Assert.That(d.ReadCommon(DeviceFeatureSelect, 4), Is.Zero);
            Assert.That(d.ReadCommon(DriverFeatureSelect, 4), Is.Zero);
            Assert.That(d.ReadCommon(QueueSelect, 2), Is.Zero);
            Assert.That(d.ReadCommon(QueueEnable, 2), Is.Zero);
            Assert.That(d.ReadCommon(QueueSize, 2), Is.EqualTo(256UL));
            Assert.That(d.ReadCommon(QueueDesc, 8), Is.Zero);
            Assert.That(d.ReadCommon(ConfigMsixVector, 2), Is.EqualTo((ulong)VirtioPciTransport.NoVector));
            Assert.That(d.ReadCommon(QueueMsixVector, 2), Is.EqualTo((ulong)VirtioPciTransport.NoVector));
            Assert.That(rig.Guest.ReadBar(0, 0x1000, 1), Is.Zero, "ISR");
            Assert.That(rig.Device.DriverFeatures, Is.Zero);
        }

        // And the device comes up again.
        var queue = rig.Start();
        Assert.That(rig.EchoOnce(queue, 7, out _), Is.True);
    }
}
