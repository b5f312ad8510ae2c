using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>The VIRTIO_PCI_CAP_PCI_CFG window: BAR accesses through configuration space (virtio 1.2 §4.1.4.9).</summary>
[TestFixture]
public sealed class VirtioPciConfigWindowTests
{
    private const int Bar = 4;
    private const int Offset = 8;
    private const int Length = 12;
    private const int Data = 16;

    [Test]
    public void Reads_through_the_window_are_BAR_reads([Values] GuestArchitecture architecture)
    {
        using var rig = new VirtioPciRig(architecture);
        int cap = rig.Driver.ConfigWindow!.CapabilityOffset;
        Open(rig, cap, bar: 0, offset: 0x04, length: 4);   // device_feature, select 0
        rig.Driver.WriteCommon(0x00, 4, 1);
        uint features = rig.Guest.ReadConfig(cap + Data, 4);
        Open(rig, cap, bar: 0, offset: 0x2000, length: 1);  // device config byte 0
        uint config = rig.Guest.ReadConfig(cap + Data, 1);
        Open(rig, cap, bar: 0, offset: 0x12, length: 2);    // num_queues
        uint queues = rig.Guest.ReadConfig(cap + Data, 4);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(features, Is.EqualTo(1u), "VERSION_1, bit 32");
            Assert.That(config, Is.EqualTo(0xA5u));
            Assert.That(queues & 0xFFFF, Is.EqualTo(2u), "the first cap.length bytes of pci_cfg_data");
            Assert.That(rig.Guest.ReadConfig(cap + Bar, 1), Is.Zero, "the window's fields read back");
            Assert.That(rig.Guest.ReadConfig(cap + Offset, 4), Is.EqualTo(0x12u));
            Assert.That(rig.Guest.ReadConfig(cap + Length, 4), Is.EqualTo(2u));
        }
    }

    [Test]
    public void Writes_through_the_window_are_BAR_writes_and_a_doorbell_is_one()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        int cap = rig.Driver.ConfigWindow!.CapabilityOffset;
        var device = (PciEchoDevice)rig.Device;
        var queue = rig.Start();

        Open(rig, cap, bar: 0, offset: 0x16, length: 2);   // queue_select
        rig.Guest.WriteConfig(cap + Data, 2, 1);
        ulong selected = rig.Driver.ReadCommon(0x16, 2);

        rig.Ram.SetU32(rig.Buffers, 0x77);
        queue.Post([new GuestBuffer(rig.Buffers, 4, false), new GuestBuffer(rig.Buffers + 0x100, 4, true)]);
        Open(rig, cap, bar: 0, offset: (uint)rig.Driver.NotifyAddress(0), length: 2);
        rig.Guest.WriteConfig(cap + Data, 2, 0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(selected, Is.EqualTo(1UL));
            Assert.That(SimulatedPciGuest.WaitUntil(() => queue.UsedIndex == 1), Is.True, "the doorbell rang");
            Assert.That(rig.Ram.U32(rig.Buffers + 0x100), Is.EqualTo(0x77u));
            Assert.That(device.Notified, Is.EqualTo(1));
        }
    }

    [Test]
    public void Reading_the_ISR_through_the_window_clears_it()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86, useMsix: false);
        int cap = rig.Driver.ConfigWindow!.CapabilityOffset;
        var queue = rig.Start();
        queue.Post([new GuestBuffer(rig.Buffers, 4, false), new GuestBuffer(rig.Buffers + 0x100, 4, true)]);
        rig.Driver.Notify(0);
        Assert.That(SimulatedPciGuest.WaitUntil(() => rig.Guest.Intx!.IsAsserted), Is.True);
        Open(rig, cap, bar: 0, offset: 0x1000, length: 1);
        uint isr = rig.Guest.ReadConfig(cap + Data, 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(isr, Is.EqualTo(1u));
            Assert.That(rig.Guest.Intx!.IsAsserted, Is.False);
            Assert.That(rig.Guest.ReadBar(0, 0x1000, 1), Is.Zero);
        }
    }

    [TestCase(0, 0x04u, 3u, 0x1234_5678u, TestName = "a length other than 1, 2, 4")]
    [TestCase(0, 0x15u, 2u, 0x1234_5678u, TestName = "an unaligned offset")]
    [TestCase(1, 0x04u, 4u, 0u, TestName = "a BAR the device has no structure in")]
    [TestCase(0, 0x400Cu, 4u, 0u, TestName = "the MSI-X table (no virtio structure)")]
    [TestCase(0, 0x0FFCu, 4u, 0u, TestName = "past the common configuration")]
    [TestCase(0, 0xFFFF_FFFCu, 4u, 0u, TestName = "an offset at the top of 32 bits")]
    public void A_window_the_driver_may_not_use_reaches_nothing(int bar, uint offset, uint length, uint expected)
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        int cap = rig.Driver.ConfigWindow!.CapabilityOffset;
        rig.Negotiate();
        rig.Guest.WriteConfig(cap + Data, 4, 0x1234_5678);
        Open(rig, cap, bar, offset, length);
        uint read = rig.Guest.ReadConfig(cap + Data, 4);
        rig.Guest.WriteConfig(cap + Data, 4, 0xFFFF_FFFF);

        using (Assert.EnterMultipleScope())
        {
            // A malformed window performs no access (the data keeps what was stored); a well-formed one outside every
            // structure performs a read of nothing (0): no MSI-X mask bit (1) or feature word (1) leaks either way.
            Assert.That(read, Is.EqualTo(expected));
            Assert.That(rig.Driver.ReadStatus(), Is.EqualTo((byte)(1 | 2 | 8)), "nothing written anywhere");
            Assert.That(rig.Driver.ReadCommon(0x00, 4), Is.EqualTo(1UL));
            Assert.That(rig.Guest.Server.Statistics.DeviceFaults, Is.Zero);
        }
    }

    private static void Open(VirtioPciRig rig, int cap, int bar, uint offset, uint length)
    {
        rig.Guest.WriteConfig(cap + Bar, 1, (uint)bar);
        rig.Guest.WriteConfig(cap + Offset, 4, offset);
        rig.Guest.WriteConfig(cap + Length, 4, length);
    }
}
