using System;
using System.Threading;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>Doorbells do not hold the vCPU: answered first, the queue processed after in a posted pass (DeferredQueueNotifications, tested with virtio-mmio).</summary>
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
    public void Doorbells_go_through_the_shared_deferred_passes_one_pass_each_here()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        GuestSplitVirtqueue queue = rig.Start();
        for (uint i = 0; i < 5; i++)
        {
            Assert.That(rig.EchoOnce(queue, i, out _), Is.True);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Transport.DeferredNotifyPasses, Is.EqualTo(5), "each doorbell answered, then its pass posted");
            Assert.That(rig.Transport.InlineNotifyPasses, Is.Zero);
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
            Assert.That(rig.Transport.IgnoredNotifies, Is.EqualTo(2));
            Assert.That(device.Notified, Is.Zero);
            Assert.That(rig.Guest.ReadBar(0, notify, 2), Is.Zero, "doorbells read 0");
            Assert.That(rig.EchoOnce(queue, 5, out _), Is.True);
            Assert.That(rig.Transport.InlineNotifyPasses, Is.Zero);
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
}
