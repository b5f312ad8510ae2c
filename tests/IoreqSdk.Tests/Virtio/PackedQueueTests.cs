using System;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio;

/// <summary>The packed ring driven as Linux drives it: wrap counters, lists crossing the ring end, event suppression both ways.</summary>
[TestFixture]
public sealed class PackedQueueTests
{
    private const ulong In = VirtioRig.Buffers;
    private const ulong Out = VirtioRig.Buffers + 0x1_0000;

    [Test]
    public void A_list_is_echoed_and_returned_with_its_buffer_id()
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked);
        GuestPackedVirtqueue driver = rig.StartPacked();
        rig.Ram.Span(In, 5).Fill(0x5A);
        ushort id = driver.Post(new[] { new GuestBuffer(In, 2, false), new GuestBuffer(In + 2, 3, false), new GuestBuffer(Out, 8, true) });
        bool kick = driver.KickPrepare();
        rig.Kick();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Queue.IsPacked, Is.True);
            Assert.That(kick, Is.True);
            Assert.That(driver.TryTakeUsed(out ushort usedId, out uint length), Is.True);
            Assert.That(usedId, Is.EqualTo(id));
            Assert.That(length, Is.EqualTo(5));
            Assert.That(rig.Ram.Span(Out, 5).ToArray(), Is.EqualTo(new byte[] { 0x5A, 0x5A, 0x5A, 0x5A, 0x5A }));
            Assert.That(rig.Transport.UsedNotifications, Is.EqualTo(1));
        }
    }

    [Test]
    public void Lists_crossing_the_ring_end_flip_the_wrap_counters_lap_after_lap()
    {
        // Size 5 (packed sizes need not be powers of two) and 2-descriptor lists: every other list straddles the end.
        var rig = new VirtioRig(VirtioFeatures.RingPacked | VirtioFeatures.EventIndex, size: 5);
        GuestPackedVirtqueue driver = rig.StartPacked();
        const int Requests = 1000;
        int taken = rig.EchoRounds(driver, new[] { new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true) }, 4, Requests);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(taken, Is.EqualTo(Requests));
            Assert.That(rig.Queue.IsBroken, Is.False);
            Assert.That(driver.NextUsed, Is.EqualTo(driver.NextAvail));
        }
    }

    [Test]
    public void Indirect_lists_take_one_ring_slot()
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked | VirtioFeatures.IndirectDescriptors, size: 4);
        GuestPackedVirtqueue driver = rig.StartPacked();
        rig.Ram.Span(In, 3).Fill(9);
        ushort id = driver.PostIndirect(VirtioRig.Tables, new[] { new GuestBuffer(In, 1, false), new GuestBuffer(In + 1, 2, false), new GuestBuffer(Out, 3, true) });
        rig.Kick();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(driver.TryTakeUsed(out ushort usedId, out uint length), Is.True);
            Assert.That(usedId, Is.EqualTo(id));
            Assert.That(length, Is.EqualTo(3));
            Assert.That(driver.NextUsed, Is.EqualTo(1));
            Assert.That(rig.Ram.Span(Out, 3).ToArray(), Is.EqualTo(new byte[] { 9, 9, 9 }));
        }
    }

    [Test]
    public void A_descriptor_from_an_earlier_lap_is_not_available()
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked, size: 4);
        rig.Device.Echo = false;
        GuestPackedVirtqueue driver = rig.StartPacked();

        // Flags of the second lap (AVAIL clear, USED set) while the device is on its first: not new, not an error.
        driver.WriteDescriptor(0, In, 4, 0, GuestPackedVirtqueue.AvailableFlags(wrap: false));
        var chain = new VirtioDescriptorChain();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Queue.TryPop(chain), Is.False);
            Assert.That(rig.Queue.IsBroken, Is.False);
        }
    }

    [Test]
    public void Driver_event_suppression_DISABLE_and_DESC_are_honoured()
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked | VirtioFeatures.EventIndex, size: 8);
        rig.Device.Echo = false;
        GuestPackedVirtqueue driver = rig.StartPacked();
        var chain = new VirtioDescriptorChain();
        for (int i = 0; i < 4; i++)
        {
            driver.Post(new[] { new GuestBuffer(In, 4, false) });
        }

        driver.SetDriverEvent(flags: 1);
        rig.Queue.TryPop(chain);
        rig.Queue.Push(chain, 0);
        bool disabled = rig.Queue.SignalUsed();

        // Interrupt when the descriptor at position 2 of the first lap (wrap 1) is used.
        driver.SetDriverEvent(flags: 2, offWrap: 0x8000 | 2);
        var signals = new bool[3];
        for (int i = 0; i < 3; i++)
        {
            rig.Queue.TryPop(chain);
            rig.Queue.Push(chain, 0);
            signals[i] = rig.Queue.SignalUsed();
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(disabled, Is.False);
            Assert.That(signals, Is.EqualTo(new[] { false, true, false }));
            Assert.That(rig.Transport.UsedNotifications, Is.EqualTo(1));
        }
    }

    [Test]
    public void A_driver_event_in_the_previous_lap_is_crossed_by_a_batch_that_wraps_the_ring()
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked | VirtioFeatures.EventIndex, size: 4);
        rig.Device.Echo = false;
        GuestPackedVirtqueue driver = rig.StartPacked();
        var chain = new VirtioDescriptorChain();
        for (int i = 0; i < 3; i++)
        {
            driver.Post(new[] { new GuestBuffer(In, 4, false) });
        }

        // Interrupt when position 3 of lap 1 is used.
        driver.SetDriverEvent(flags: 2, offWrap: 0x8000 | 3);
        for (int i = 0; i < 3; i++)
        {
            rig.Queue.TryPop(chain);
            rig.Queue.Push(chain, 0);
        }

        bool beforeEvent = rig.Queue.SignalUsed(); // positions 0..2 used
        for (int i = 0; i < 3; i++)
        {
            driver.TryTakeUsed(out _, out _);
        }

        driver.Post(new[] { new GuestBuffer(In, 4, false) }); // position 3, lap 1
        driver.Post(new[] { new GuestBuffer(In, 4, false) }); // position 0, lap 2
        for (int i = 0; i < 2; i++)
        {
            rig.Queue.TryPop(chain);
            rig.Queue.Push(chain, 0);
        }

        bool afterWrap = rig.Queue.SignalUsed(); // the device is in lap 2 now; the event (lap 1) was crossed

        using (Assert.EnterMultipleScope())
        {
            Assert.That(beforeEvent, Is.False);
            Assert.That(afterWrap, Is.True);
            Assert.That(driver.TryTakeUsed(out _, out _), Is.True);
            Assert.That(driver.TryTakeUsed(out _, out _), Is.True);
            Assert.That(driver.UsedWrap, Is.False);
        }
    }

    [Test]
    public void Device_event_suppression_is_published_so_the_driver_kicks_only_when_asked()
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked | VirtioFeatures.EventIndex, size: 4);
        rig.Device.Echo = false;
        GuestPackedVirtqueue driver = rig.StartPacked();
        var chain = new VirtioDescriptorChain();

        rig.Queue.DisableNotifications();
        ushort disabledFlags = driver.DeviceEventFlags;
        driver.Post(new[] { new GuestBuffer(In, 4, false), new GuestBuffer(In, 4, false) });
        bool kickWhileDisabled = driver.KickPrepare();
        bool more = rig.Queue.EnableNotifications();
        rig.Queue.TryPop(chain);
        rig.Queue.Push(chain, 0);
        ushort offWrap = driver.DeviceEventOffWrap; // the next list the device wants to hear about
        driver.Post(new[] { new GuestBuffer(In, 4, false), new GuestBuffer(In, 4, false) }); // crosses into lap 2
        bool kick = driver.KickPrepare();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(disabledFlags, Is.EqualTo(1));
            Assert.That(kickWhileDisabled, Is.False);
            Assert.That(more, Is.True);
            Assert.That(driver.DeviceEventFlags, Is.EqualTo(2));
            Assert.That(offWrap, Is.EqualTo(0x8000 | 2));
            Assert.That(kick, Is.True);
        }
    }
}
