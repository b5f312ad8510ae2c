using System;
using System.Linq;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio;

/// <summary>The split ring driven as Linux drives it: chains, kicks, the used ring, event index, indirect tables, wrap.</summary>
// Both ways the queue reaches its rings: copies through IGuestMemory, and in place through host addresses.
[TestFixture(false)]
[TestFixture(true)]
public sealed class SplitQueueTests
{
    private readonly bool _inPlace;

    public SplitQueueTests(bool inPlace) => _inPlace = inPlace;

    private const ulong In = VirtioRig.Buffers;
    private const ulong Out = VirtioRig.Buffers + 0x1_0000;

    [Test]
    public void A_chain_across_segments_is_read_and_written_in_order()
    {
        var rig = NewRig(0);
        GuestSplitVirtqueue driver = rig.StartSplit();
        byte[] message = Enumerable.Range(1, 40).Select(i => (byte)i).ToArray();
        message.AsSpan(0, 10).CopyTo(rig.Ram.Span(In, 10));
        message.AsSpan(10, 25).CopyTo(rig.Ram.Span(In + 0x100, 25));
        message.AsSpan(35, 5).CopyTo(rig.Ram.Span(In + 0x200, 5));

        ushort head = driver.Post(new[]
        {
            new GuestBuffer(In, 10, false), new GuestBuffer(In + 0x100, 25, false), new GuestBuffer(In + 0x200, 5, false),
            new GuestBuffer(Out, 16, true), new GuestBuffer(Out + 0x100, 64, true),
        });
        bool kick = driver.KickPrepare();
        rig.Kick();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(kick, Is.True);
            Assert.That(driver.TryTakeUsed(out ushort id, out uint length), Is.True);
            Assert.That(id, Is.EqualTo(head));
            Assert.That(length, Is.EqualTo(40));
            Assert.That(rig.Ram.Span(Out, 16).ToArray().Concat(rig.Ram.Span(Out + 0x100, 24).ToArray()), Is.EqualTo(message));
            Assert.That(rig.Transport.UsedNotifications, Is.EqualTo(1));
            Assert.That(rig.Queue.IsBroken, Is.False);
        }
    }

    [Test]
    public void Copies_at_an_offset_continue_across_segment_boundaries()
    {
        var rig = NewRig(0);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        for (int i = 0; i < 10; i++)
        {
            rig.Ram.Span(In, 10)[i] = (byte)i;
            rig.Ram.Span(In + 0x100, 10)[i] = (byte)(10 + i);
        }

        driver.Post(new[]
        {
            new GuestBuffer(In, 10, false), new GuestBuffer(In + 0x100, 10, false),
            new GuestBuffer(Out, 3, true), new GuestBuffer(Out + 0x100, 0, true), new GuestBuffer(Out + 0x200, 8, true),
        });
        var chain = new VirtioDescriptorChain();
        rig.Queue.TryPop(chain);
        var read = new byte[6];
        bool readOk = chain.TryRead(7, read);
        bool writeOk = chain.TryWrite(1, new byte[] { 0xA1, 0xA2, 0xA3, 0xA4 });

        using (Assert.EnterMultipleScope())
        {
            Assert.That(readOk, Is.True);
            Assert.That(read, Is.EqualTo(new byte[] { 7, 8, 9, 10, 11, 12 }));
            Assert.That(writeOk, Is.True);
            Assert.That(rig.Ram.Span(Out, 3).ToArray(), Is.EqualTo(new byte[] { 0, 0xA1, 0xA2 }));
            Assert.That(rig.Ram.Span(Out + 0x200, 3).ToArray(), Is.EqualTo(new byte[] { 0xA3, 0xA4, 0 }));
            Assert.That(chain.WritableLength, Is.EqualTo(11));
        }
    }

    [Test]
    public void A_chain_longer_than_any_before_grows_the_chain_object_and_keeps_every_segment_in_order()
    {
        var rig = NewRig(0);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();

        // 9 readable and 7 writable segments: past the chain object's first arrays (4 each), twice for the readable part.
        var buffers = Enumerable.Range(0, 9).Select(i => new GuestBuffer(In + (0x100 * (ulong)i), (uint)(i + 1), false))
            .Concat(Enumerable.Range(0, 7).Select(i => new GuestBuffer(Out + (0x100 * (ulong)i), (uint)(10 + i), true)))
            .ToArray();
        for (int i = 0; i < 9; i++)
        {
            rig.Ram.Span(In + (0x100 * (ulong)i), i + 1).Fill((byte)(0x10 + i));
        }

        ushort head = driver.Post(buffers);
        var chain = new VirtioDescriptorChain();
        bool popped = rig.Queue.TryPop(chain);
        var lastReadable = new byte[9];
        bool readOk = chain.TryRead(chain.ReadableLength - 9, lastReadable);
        var across = new byte[3];
        bool acrossOk = chain.TryRead(0, across);
        bool statusOk = chain.TryWrite(chain.WritableLength - 1, new byte[] { 0x5A });

        using (Assert.EnterMultipleScope())
        {
            Assert.That(popped, Is.True);
            Assert.That(chain.Id, Is.EqualTo(head));
            Assert.That(chain.Readable.ToArray(), Is.EqualTo(buffers.Take(9).Select(b => new VirtioBufferSegment(b.Address, b.Length))));
            Assert.That(chain.Writable.ToArray(), Is.EqualTo(buffers.Skip(9).Select(b => new VirtioBufferSegment(b.Address, b.Length))));
            Assert.That(chain.ReadableLength, Is.EqualTo(45));
            Assert.That(chain.WritableLength, Is.EqualTo(91));
            Assert.That(readOk && acrossOk && statusOk, Is.True);
            Assert.That(lastReadable, Is.EqualTo(Enumerable.Repeat((byte)0x18, 9)));
            Assert.That(across, Is.EqualTo(new byte[] { 0x10, 0x11, 0x11 }));
            Assert.That(rig.Ram.Span(Out + 0x600 + 15, 1)[0], Is.EqualTo(0x5A));
            Assert.That(rig.Queue.Push(chain, 0), Is.True);
            Assert.That(rig.Queue.IsBroken, Is.False);
        }
    }

    [Test]
    public void A_range_outside_the_part_is_refused_even_next_to_its_last_segment()
    {
        var rig = NewRig(0);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        driver.Post(new[] { new GuestBuffer(In, 8, false), new GuestBuffer(Out, 4, true), new GuestBuffer(Out + 0x100, 1, true) });
        var chain = new VirtioDescriptorChain();
        rig.Queue.TryPop(chain);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(chain.TryWrite(4, new byte[] { 1 }), Is.True, "the last byte, alone in the last segment");
            Assert.That(chain.TryWrite(4, new byte[] { 1, 2 }), Is.False, "one byte past the writable part");
            Assert.That(chain.TryWrite(5, new byte[] { 1 }), Is.False, "just past the end");
            Assert.That(chain.TryWrite(ulong.MaxValue, new byte[] { 1 }), Is.False);
            Assert.That(chain.TryRead(7, new byte[2]), Is.False);
            Assert.That(rig.Ram.Span(Out + 0x101, 1)[0], Is.Zero, "nothing written past the segment");
        }
    }

    [Test]
    public void A_chain_is_copied_once_so_rewriting_the_table_afterwards_changes_nothing()
    {
        var rig = NewRig(0);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        ushort head = driver.Post(new[] { new GuestBuffer(In, 8, false), new GuestBuffer(Out, 8, true) });
        var chain = new VirtioDescriptorChain();
        Assert.That(rig.Queue.TryPop(chain), Is.True);

        // The guest rewrites both descriptors (and their flags) after the device read them.
        driver.WriteDescriptor(head, 0xDEAD_0000, 1, 2, 0);
        driver.WriteDescriptor(1, 0xBEEF_0000, 2, 0, 0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(chain.Readable.ToArray(), Is.EqualTo(new[] { new VirtioBufferSegment(In, 8) }));
            Assert.That(chain.Writable.ToArray(), Is.EqualTo(new[] { new VirtioBufferSegment(Out, 8) }));
            Assert.That(chain.Id, Is.EqualTo(head));
            Assert.That(rig.Queue.Push(chain, 8), Is.True);
            Assert.That(driver.UsedIndex, Is.EqualTo(1));
        }
    }

    [Test]
    public void Indirect_tables_are_followed()
    {
        var rig = NewRig(VirtioFeatures.IndirectDescriptors);
        GuestSplitVirtqueue driver = rig.StartSplit();
        rig.Ram.Span(In, 3).Fill(7);
        ushort head = driver.PostIndirect(VirtioRig.Tables, new[] { new GuestBuffer(In, 3, false), new GuestBuffer(Out, 3, true) });
        rig.Kick();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(driver.TryTakeUsed(out ushort id, out uint length), Is.True);
            Assert.That(id, Is.EqualTo(head));
            Assert.That(length, Is.EqualTo(3));
            Assert.That(rig.Ram.Span(Out, 3).ToArray(), Is.EqualTo(new byte[] { 7, 7, 7 }));
        }
    }

    [Test]
    public void Direct_descriptors_may_lead_into_one_indirect_descriptor()
    {
        var rig = NewRig(VirtioFeatures.IndirectDescriptors);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        rig.Ram.SetDescriptor(VirtioRig.Tables, Out, 4, 2, 0);
        driver.WriteDescriptor(0, In, 4, 1, 1);
        driver.WriteDescriptor(1, VirtioRig.Tables, 16, 4, 0);
        driver.PublishHead(0);
        var chain = new VirtioDescriptorChain();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Queue.TryPop(chain), Is.True);
            Assert.That(chain.Readable.ToArray(), Is.EqualTo(new[] { new VirtioBufferSegment(In, 4) }));
            Assert.That(chain.Writable.ToArray(), Is.EqualTo(new[] { new VirtioBufferSegment(Out, 4) }));
        }
    }

    [Test]
    public void Used_index_arithmetic_holds_across_the_16_bit_wrap()
    {
        var rig = NewRig(VirtioFeatures.EventIndex, size: 4);
        GuestSplitVirtqueue driver = rig.StartSplit();
        const int Requests = 70_000;
        int taken = rig.EchoRounds(driver, new[] { new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true) }, 4, Requests);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(taken, Is.EqualTo(Requests));
            Assert.That(driver.UsedIndex, Is.EqualTo(unchecked((ushort)Requests)));
            Assert.That(rig.Queue.IsBroken, Is.False);
        }
    }

    [Test]
    public void Used_event_is_honoured_the_device_interrupts_only_when_it_is_crossed()
    {
        var rig = NewRig(VirtioFeatures.EventIndex);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        for (int i = 0; i < 4; i++)
        {
            driver.Post(new[] { new GuestBuffer(In, 4, false) });
        }

        // Interrupt me once the used index passes 2 (i.e. when the third buffer is used).
        driver.SetUsedEvent(2);
        var chain = new VirtioDescriptorChain();
        var interrupts = new int[4];
        for (int i = 0; i < 4; i++)
        {
            rig.Queue.TryPop(chain);
            rig.Queue.Push(chain, 0);
            rig.Queue.SignalUsed();
            interrupts[i] = rig.Transport.UsedNotifications;
        }

        Assert.That(interrupts, Is.EqualTo(new[] { 0, 0, 1, 1 }));
    }

    [Test]
    public void Used_event_crossed_inside_a_batch_interrupts_once()
    {
        var rig = NewRig(VirtioFeatures.EventIndex);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        for (int i = 0; i < 5; i++)
        {
            driver.Post(new[] { new GuestBuffer(In, 4, false) });
        }

        driver.SetUsedEvent(3);
        var chain = new VirtioDescriptorChain();
        for (int i = 0; i < 2; i++)
        {
            rig.Queue.TryPop(chain);
            rig.Queue.Push(chain, 0);
        }

        bool first = rig.Queue.SignalUsed(); // used 0..1: event 3 not crossed
        for (int i = 0; i < 3; i++)
        {
            rig.Queue.TryPop(chain);
            rig.Queue.Push(chain, 0);
        }

        bool second = rig.Queue.SignalUsed(); // used 2..4: crossed

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first, Is.False);
            Assert.That(second, Is.True);
            Assert.That(rig.Transport.UsedNotifications, Is.EqualTo(1));
        }
    }

    [Test]
    public void Avail_event_is_published_so_the_driver_kicks_only_when_the_device_asks()
    {
        var rig = NewRig(VirtioFeatures.EventIndex);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        var chain = new VirtioDescriptorChain();

        driver.Post(new[] { new GuestBuffer(In, 4, false) });
        bool firstKick = driver.KickPrepare(); // avail_event is 0 at start: kick
        rig.Queue.DisableNotifications();
        rig.Queue.TryPop(chain);
        rig.Queue.Push(chain, 0);
        driver.Post(new[] { new GuestBuffer(In, 4, false) });
        bool whileBusy = driver.KickPrepare(); // the device did not move avail_event on: no kick
        bool moreWork = rig.Queue.EnableNotifications();
        ushort published = driver.AvailEvent;
        rig.Queue.TryPop(chain);
        rig.Queue.Push(chain, 0);
        ushort afterPop = driver.AvailEvent; // notifications on: each pop asks for the next buffer
        driver.Post(new[] { new GuestBuffer(In, 4, false) });
        bool afterEnable = driver.KickPrepare();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(firstKick, Is.True);
            Assert.That(whileBusy, Is.False);
            Assert.That(moreWork, Is.True);
            Assert.That(published, Is.EqualTo(1));
            Assert.That(afterPop, Is.EqualTo(2));
            Assert.That(afterEnable, Is.True);
        }
    }

    [Test]
    public void Without_event_index_the_flags_are_used_both_ways()
    {
        var rig = NewRig(0);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        var chain = new VirtioDescriptorChain();

        rig.Queue.DisableNotifications();
        ushort whileDisabled = driver.UsedFlags;
        driver.Post(new[] { new GuestBuffer(In, 4, false) });
        bool kickWhileDisabled = driver.KickPrepare();
        bool more = rig.Queue.EnableNotifications();
        ushort enabled = driver.UsedFlags;

        driver.SuppressInterrupts(true);
        rig.Queue.TryPop(chain);
        rig.Queue.Push(chain, 0);
        bool suppressed = rig.Queue.SignalUsed();
        driver.SuppressInterrupts(false);
        driver.Post(new[] { new GuestBuffer(In, 4, false) });
        rig.Queue.TryPop(chain);
        rig.Queue.Push(chain, 0);
        bool signalled = rig.Queue.SignalUsed();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(whileDisabled, Is.EqualTo(1));
            Assert.That(kickWhileDisabled, Is.False);
            Assert.That(more, Is.True);
            Assert.That(enabled, Is.Zero);
            Assert.That(suppressed, Is.False);
            Assert.That(signalled, Is.True);
            Assert.That(rig.Transport.UsedNotifications, Is.EqualTo(1));
        }
    }

    [Test]
    public void A_chain_popped_before_a_reset_is_dropped_when_pushed()
    {
        var rig = NewRig(0, size: 8);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        driver.Post(new[] { new GuestBuffer(In, 4, false) });
        var chain = new VirtioDescriptorChain();
        rig.Queue.TryPop(chain);
        rig.Device.WriteStatus(0);
        rig.Negotiate();
        rig.ConfigureQueue(8);
        rig.Start();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Queue.Push(chain, 0), Is.False);
            Assert.That(chain.IsOutstanding, Is.False);
            Assert.That(driver.UsedIndex, Is.Zero);
        }
    }

    [Test]
    public void Pushing_more_bytes_than_the_writable_part_is_a_device_bug_and_throws()
    {
        var rig = NewRig(0);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        driver.Post(new[] { new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true) });
        var chain = new VirtioDescriptorChain();
        rig.Queue.TryPop(chain);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => rig.Queue.Push(chain, 5), Throws.TypeOf<ArgumentOutOfRangeException>());
            Assert.That(rig.Queue.Push(chain, 4), Is.True);
            Assert.That(() => rig.Queue.Push(chain, 0), Throws.InvalidOperationException);
        }
    }

    [Test]
    public void Rings_are_served_in_place_exactly_when_the_memory_gives_host_addresses()
    {
        var rig = NewRig(VirtioFeatures.EventIndex);
        GuestSplitVirtqueue driver = rig.StartSplit();
        int taken = rig.EchoRounds(driver, new[] { new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true) }, 4, 100);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(taken, Is.EqualTo(100));
            Assert.That(rig.Ram.HostAddressesGiven, _inPlace ? Is.EqualTo(3) : Is.Zero, "the three ring areas are looked up once, not per request");
        }
    }

    [Test]
    public void A_mapping_dropped_between_pop_and_push_is_looked_up_again()
    {
        var rig = NewRig(0);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        var chain = new VirtioDescriptorChain();
        for (int i = 0; i < 3; i++)
        {
            driver.Post(new[] { new GuestBuffer(In, 8, false), new GuestBuffer(Out, 8, true) });
            Assert.That(rig.Queue.TryPop(chain), Is.True);
            rig.Ram.DropMappings();
            Assert.That(rig.Queue.Push(chain, 8), Is.True);
            rig.Ram.DropMappings();
            Assert.That(driver.TryTakeUsed(out _, out uint length), Is.True);
            Assert.That(length, Is.EqualTo(8));
        }

        Assert.That(rig.Ram.HostAddressesGiven, _inPlace ? Is.EqualTo(3 * 2 * 3) : Is.Zero, "every pop and push after a drop maps the rings again");
    }

    [Test]
    public void A_ring_that_crosses_a_page_is_served_by_copies()
    {
        // 64 entries: the used ring is 6 + 8 * 64 = 518 bytes, placed to straddle a 4 KiB page boundary.
        var rig = NewRig(0, size: 64);
        rig.Device.SetQueueDeviceArea(0, VirtioRig.DeviceArea + 0x1000 - 0x100);
        GuestSplitVirtqueue driver = rig.StartSplit();
        int taken = rig.EchoRounds(driver, new[] { new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true) }, 4, 200);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(taken, Is.EqualTo(200));
            Assert.That(rig.Queue.IsBroken, Is.False);
        }
    }

    private VirtioRig NewRig(ulong features, ushort size = 16, ushort maxSize = 256, ulong offered = ulong.MaxValue) =>
        new(features, size, maxSize, offered, _inPlace);
}
