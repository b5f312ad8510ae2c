using System.Linq;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio.Pci;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>MSI-X vectors (virtio 1.2 §4.1.5.1.2) and INTx with the ISR (§4.1.4.5).</summary>
[TestFixture]
public sealed class VirtioPciInterruptTests
{
    private const ulong ConfigMsixVector = 0x10;
    private const ulong QueueSelect = 0x16;
    private const ulong QueueMsixVector = 0x1A;
    private const ulong Isr = 0x1000;

    [Test]
    public void Vectors_in_the_table_are_kept_and_others_read_back_NO_VECTOR()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        var d = rig.Driver;
        ulong Config(ushort vector)
        {
            d.WriteCommon(ConfigMsixVector, 2, vector);
            return d.ReadCommon(ConfigMsixVector, 2);
        }

        ulong Queue(int queue, ushort vector)
        {
            d.WriteCommon(QueueSelect, 2, (ulong)queue);
            d.WriteCommon(QueueMsixVector, 2, vector);
            return d.ReadCommon(QueueMsixVector, 2);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Config(0), Is.Zero);
            Assert.That(Config(2), Is.EqualTo(2UL), "three vectors: 0 to 2");
            Assert.That(Config(3), Is.EqualTo((ulong)VirtioPciTransport.NoVector), "out of the table");
            Assert.That(Config(0x8000), Is.EqualTo((ulong)VirtioPciTransport.NoVector));
            Assert.That(Config(VirtioPciTransport.NoVector), Is.EqualTo((ulong)VirtioPciTransport.NoVector));
            Assert.That(Queue(0, 1), Is.EqualTo(1UL));
            Assert.That(Queue(1, 2), Is.EqualTo(2UL));
            Assert.That(Queue(1, 3), Is.EqualTo((ulong)VirtioPciTransport.NoVector));
            Assert.That(Queue(0, 0), Is.Zero, "vectors may be shared");
        }
    }

    [Test]
    public void Without_MSI_X_every_vector_reads_back_NO_VECTOR_on_Arm64()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.Arm64);
        var d = rig.Driver;
        d.WriteCommon(ConfigMsixVector, 2, 0);
        d.WriteCommon(QueueMsixVector, 2, 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.ReadCommon(ConfigMsixVector, 2), Is.EqualTo((ulong)VirtioPciTransport.NoVector));
            Assert.That(d.ReadCommon(QueueMsixVector, 2), Is.EqualTo((ulong)VirtioPciTransport.NoVector));
        }
    }

    [Test]
    public void Each_notification_sends_its_own_vector()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        var queue = rig.Start();
        Assert.That(rig.EchoOnce(queue, 1, out GuestVirtioInterrupts used), Is.True);
        var d = rig.Driver;
        d.ConfigureQueue(1, VirtioPciRig.QueueSize, rig.DescriptorArea(1), rig.DriverArea(1), rig.DeviceArea(1));
        d.EnableQueue(1);
        d.Notify(1); // a config change
        Assert.That(SimulatedPciGuest.WaitUntil(() => d.InterruptPending), Is.True);
        GuestVirtioInterrupts changed = d.TakeInterrupts();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(used, Is.EqualTo(GuestVirtioInterrupts.UsedBuffers));
            Assert.That(changed, Is.EqualTo(GuestVirtioInterrupts.ConfigChange));
            Assert.That(rig.Guest.Messages.Select(m => m.Data), Is.EqualTo(new uint[] { 0x41, 0x40 }), "queue 0's vector 1, then the config vector 0");
            Assert.That(rig.Guest.Intx!.Assertions, Is.Zero);
        }
    }

    [Test]
    public void A_queue_without_a_vector_sends_nothing_under_MSI_X()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        var queue = rig.Start();
        rig.Driver.WriteCommon(QueueSelect, 2, 0);
        rig.Driver.WriteCommon(QueueMsixVector, 2, VirtioPciTransport.NoVector);
        rig.Ram.SetU32(rig.Buffers, 9);
        queue.Post([new GuestBuffer(rig.Buffers, 4, false), new GuestBuffer(rig.Buffers + 0x100, 4, true)]);
        rig.Driver.Notify(0);
        Assert.That(SimulatedPciGuest.WaitUntil(() => queue.UsedIndex == 1), Is.True);
        rig.Driver.ReadStatus(); // served after the flush that used the buffer: its interrupt, if any, is out

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Guest.Messages, Is.Empty);
            Assert.That(rig.Guest.Intx!.Assertions, Is.Zero);
        }
    }

    [Test]
    public void INTx_is_raised_with_the_ISR_and_reading_the_ISR_clears_both()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86, useMsix: false);
        var queue = rig.Start();
        rig.Ram.SetU32(rig.Buffers, 9);
        queue.Post([new GuestBuffer(rig.Buffers, 4, false), new GuestBuffer(rig.Buffers + 0x100, 4, true)]);
        rig.Driver.Notify(0);
        Assert.That(SimulatedPciGuest.WaitUntil(() => rig.Guest.Intx!.IsAsserted), Is.True);
        ulong first = rig.Guest.ReadBar(0, Isr, 1);
        bool assertedAfterRead = rig.Guest.Intx!.IsAsserted;
        ulong second = rig.Guest.ReadBar(0, Isr, 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Transport.InterruptMode, Is.EqualTo(IoreqSdk.Pci.PciInterruptMode.Intx));
            Assert.That(first, Is.EqualTo(1UL), "queue interrupt");
            Assert.That(assertedAfterRead, Is.False, "the read deasserts the line");
            Assert.That(second, Is.Zero, "and clears the bits");
            Assert.That(rig.Guest.Intx.Assertions, Is.EqualTo(1));
            Assert.That(rig.Guest.Messages, Is.Empty);
        }
    }

    [Test]
    public void A_config_change_under_INTx_sets_the_ISR_config_bit([Values] GuestArchitecture architecture)
    {
        using var rig = new VirtioPciRig(architecture, useMsix: false);
        rig.Start();
        var d = rig.Driver;
        d.ConfigureQueue(1, VirtioPciRig.QueueSize, rig.DescriptorArea(1), rig.DriverArea(1), rig.DeviceArea(1));
        d.EnableQueue(1);
        d.Notify(1);
        Assert.That(SimulatedPciGuest.WaitUntil(() => d.InterruptPending), Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.TakeInterrupts(), Is.EqualTo(GuestVirtioInterrupts.ConfigChange));
            Assert.That(d.InterruptPending, Is.False);
        }
    }
}
