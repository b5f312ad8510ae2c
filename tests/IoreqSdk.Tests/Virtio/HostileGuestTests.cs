using System;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio;

/// <summary>
/// What a hostile or broken driver can write into its rings. Each case must end the same way: the chain is refused,
/// the queue is broken with the right reason, the device sets DEVICE_NEEDS_RESET and asks for a config-change
/// interrupt; nothing throws, nothing hangs, and no access lands outside guest RAM.
/// </summary>
[TestFixture]
public sealed class HostileGuestTests
{
    private const ulong In = VirtioRig.Buffers;
    private const ulong Out = VirtioRig.Buffers + 0x1_0000;
    private const ulong Table = VirtioRig.Tables;
    private const ushort Next = 1;
    private const ushort Write = 2;
    private const ushort Indirect = 4;
    private const ulong NotRam = 0x4000_0000;

    [Test]
    public void Head_index_out_of_range() =>
        Split(0, 8, (d, ram) => d.PublishHead(8), VirtioQueueError.DescriptorIndexOutOfRange);

    [Test]
    public void Next_index_out_of_range() =>
        Split(0, 8, (d, ram) => { d.WriteDescriptor(0, In, 4, Next, 8); d.PublishHead(0); }, VirtioQueueError.DescriptorIndexOutOfRange);

    [Test]
    public void A_next_loop_ends_as_a_chain_longer_than_the_queue() =>
        Split(0, 8, (d, ram) => { d.WriteDescriptor(0, In, 4, Next, 1); d.WriteDescriptor(1, In, 4, Next, 0); d.PublishHead(0); }, VirtioQueueError.ChainTooLong);

    [Test]
    public void A_self_loop() =>
        Split(0, 8, (d, ram) => { d.WriteDescriptor(3, In, 4, Next, 3); d.PublishHead(3); }, VirtioQueueError.ChainTooLong);

    [Test]
    public void An_indirect_table_with_more_entries_than_the_queue_size() =>
        Split(VirtioFeatures.IndirectDescriptors, 8, (d, ram) =>
        {
            for (int i = 0; i < 9; i++)
            {
                ram.SetDescriptor(Table + (16UL * (uint)i), In, 4, 0, 0);
            }

            d.WriteDescriptor(0, Table, 9 * 16, Indirect, 0);
            d.PublishHead(0);
        }, VirtioQueueError.ChainTooLong);

    [Test]
    public void A_next_loop_inside_an_indirect_table() =>
        Split(VirtioFeatures.IndirectDescriptors, 8, (d, ram) =>
        {
            ram.SetDescriptor(Table, In, 4, Next, 1);
            ram.SetDescriptor(Table + 16, In, 4, Next, 0);
            d.WriteDescriptor(0, Table, 32, Indirect, 0);
            d.PublishHead(0);
        }, VirtioQueueError.ChainTooLong);

    [Test]
    public void Nested_indirect_tables() =>
        Split(VirtioFeatures.IndirectDescriptors, 8, (d, ram) =>
        {
            ram.SetDescriptor(Table, Table + 0x100, 16, Indirect, 0);
            d.WriteDescriptor(0, Table, 16, Indirect, 0);
            d.PublishHead(0);
        }, VirtioQueueError.NestedIndirect);

    [TestCase(0u)]
    [TestCase(24u)]
    [TestCase(15u)]
    public void An_indirect_table_length_not_a_positive_multiple_of_16(uint length) =>
        Split(VirtioFeatures.IndirectDescriptors, 8, (d, ram) => { d.WriteDescriptor(0, Table, length, Indirect, 0); d.PublishHead(0); }, VirtioQueueError.IndirectLengthInvalid);

    [Test]
    public void An_indirect_descriptor_with_NEXT_set() =>
        Split(VirtioFeatures.IndirectDescriptors, 8, (d, ram) =>
        {
            ram.SetDescriptor(Table, In, 4, 0, 0);
            d.WriteDescriptor(0, Table, 16, Indirect | Next, 1);
            d.WriteDescriptor(1, Out, 4, Write, 0);
            d.PublishHead(0);
        }, VirtioQueueError.IndirectWithNext);

    [Test]
    public void An_indirect_descriptor_without_the_feature() =>
        Split(0, 8, (d, ram) => { d.WriteDescriptor(0, Table, 16, Indirect, 0); d.PublishHead(0); }, VirtioQueueError.IndirectNotNegotiated);

    [TestCase(ulong.MaxValue - 10, 100u, TestName = "A buffer wrapping at 2^64")]
    [TestCase(ulong.MaxValue, 2u, TestName = "A buffer at the last byte of the address space, 2 long")]
    public void A_buffer_whose_address_plus_length_wraps(ulong address, uint length) =>
        Split(0, 8, (d, ram) => { d.WriteDescriptor(0, address, length, 0, 0); d.PublishHead(0); }, VirtioQueueError.BufferAddressWraps);

    [Test]
    public void An_indirect_table_wrapping_at_2_64() =>
        Split(VirtioFeatures.IndirectDescriptors, 8, (d, ram) => { d.WriteDescriptor(0, ulong.MaxValue - 15, 32, Indirect, 0); d.PublishHead(0); }, VirtioQueueError.BufferAddressWraps);

    [Test]
    public void An_indirect_table_outside_RAM() =>
        Split(VirtioFeatures.IndirectDescriptors, 8, (d, ram) => { d.WriteDescriptor(0, NotRam, 32, Indirect, 0); d.PublishHead(0); }, VirtioQueueError.RingNotInRam);

    [Test]
    public void A_descriptor_table_outside_RAM()
    {
        var rig = new VirtioRig(0, size: 8);
        rig.Device.SetQueueDescriptorArea(0, NotRam);
        rig.Start();
        var driver = rig.SplitDriver();
        int refusedBefore = rig.Ram.RefusedAccesses;
        var chain = new VirtioDescriptorChain();

        // The driver only writes the avail ring (its table is nowhere); the device finds the table is not RAM.
        driver.PublishHead(0);
        bool popped = rig.Queue.TryPop(chain);
        AssertBroken(rig, popped, VirtioQueueError.RingNotInRam);
        Assert.That(rig.Ram.RefusedAccesses, Is.GreaterThan(refusedBefore));
    }

    [Test]
    public void An_available_ring_outside_RAM()
    {
        var rig = new VirtioRig(0, size: 8);
        rig.Device.SetQueueDriverArea(0, NotRam);
        rig.Start();
        rig.Kick();
        AssertBroken(rig, rig.Queue.TryPop(new VirtioDescriptorChain()), VirtioQueueError.RingNotInRam);
    }

    [Test]
    public void A_used_ring_outside_RAM()
    {
        var rig = new VirtioRig(0, size: 8);
        rig.Device.Echo = false;
        rig.Device.SetQueueDeviceArea(0, NotRam);
        rig.Start();

        // The driver side written by hand: its used ring is nowhere.
        rig.Ram.SetDescriptor(VirtioRig.DescriptorArea, In, 4, 0, 0);
        rig.Ram.SetU16(VirtioRig.DriverArea + 4, 0);
        rig.Ram.SetU16(VirtioRig.DriverArea + 2, 1);
        var chain = new VirtioDescriptorChain();
        bool popped = rig.Queue.TryPop(chain);
        bool pushed = rig.Queue.Push(chain, 0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(popped, Is.True);
            Assert.That(pushed, Is.False);
            Assert.That(chain.IsOutstanding, Is.False);
            Assert.That(rig.Queue.Error, Is.EqualTo(VirtioQueueError.RingNotInRam));
            AssertNeedsResetSignalled(rig);
        }
    }

    [Test]
    public void An_available_index_moved_back_after_it_was_seen()
    {
        var rig = new VirtioRig(0, size: 8);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        var chain = new VirtioDescriptorChain();
        driver.Post(new[] { new GuestBuffer(In, 4, false) });
        rig.Queue.DisableNotifications();
        bool more = rig.Queue.EnableNotifications();
        driver.SetAvailIndex(0); // taken back after the device saw it

        // What was seen is consumed (the drain loop makes progress); the index that went back is then refused.
        bool first = rig.Queue.TryPop(chain);
        rig.Queue.Push(chain, 0);
        bool second = rig.Queue.TryPop(chain);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(more, Is.True);
            Assert.That(first, Is.True);
        }

        AssertBroken(rig, second, VirtioQueueError.AvailIndexJump);
    }

    [Test]
    public void Packed_a_descriptor_made_unavailable_after_it_was_seen()
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked, size: 4);
        rig.Device.Echo = false;
        GuestPackedVirtqueue driver = rig.StartPacked();
        driver.Post(new[] { new GuestBuffer(In, 4, false) });
        rig.Queue.DisableNotifications();
        bool more = rig.Queue.EnableNotifications();
        rig.Ram.SetU16(driver.SlotAddress(0) + 14, 0); // taken back
        bool popped = rig.Queue.TryPop(new VirtioDescriptorChain());

        Assert.That(more, Is.True);
        AssertBroken(rig, popped, VirtioQueueError.PackedWrapCounterMismatch);
    }

    [Test]
    public void An_available_index_more_than_the_queue_size_ahead() =>
        Split(0, 8, (d, ram) => d.SetAvailIndex(9), VirtioQueueError.AvailIndexJump);

    [Test]
    public void A_writable_descriptor_before_a_readable_one() =>
        Split(0, 8, (d, ram) => { d.WriteDescriptor(0, Out, 4, Write | Next, 1); d.WriteDescriptor(1, In, 4, 0, 0); d.PublishHead(0); }, VirtioQueueError.WritableBeforeReadable);

    [Test]
    public void A_writable_descriptor_before_a_readable_one_inside_an_indirect_table() =>
        Split(VirtioFeatures.IndirectDescriptors, 8, (d, ram) =>
        {
            ram.SetDescriptor(Table, Out, 4, Write | Next, 1);
            ram.SetDescriptor(Table + 16, In, 4, 0, 0);
            d.WriteDescriptor(0, Table, 32, Indirect, 0);
            d.PublishHead(0);
        }, VirtioQueueError.WritableBeforeReadable);

    [Test]
    public void A_data_buffer_outside_RAM_fails_the_copy_and_this_device_asks_for_reset()
    {
        var rig = new VirtioRig(0, size: 8);
        GuestSplitVirtqueue driver = rig.StartSplit();
        rig.Ram.Span(In, 4).Fill(1);
        driver.Post(new[] { new GuestBuffer(NotRam, 4, false), new GuestBuffer(Out, 4, true) });
        int refusedBefore = rig.Ram.RefusedAccesses;
        rig.Kick();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Device.DataFaults, Is.EqualTo(1));
            Assert.That(rig.Ram.RefusedAccesses, Is.EqualTo(refusedBefore + 1));
            Assert.That(rig.Ram.Span(Out, 4).ToArray(), Is.EqualTo(new byte[4]));
            Assert.That(driver.TryTakeUsed(out _, out uint length), Is.True);
            Assert.That(length, Is.Zero);
            AssertNeedsResetSignalled(rig);
        }
    }

    [Test]
    public void Copies_past_a_chain_end_fail_without_touching_memory()
    {
        var rig = new VirtioRig(0, size: 8);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        driver.Post(new[] { new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true) });
        var chain = new VirtioDescriptorChain();
        rig.Queue.TryPop(chain);
        rig.Ram.Span(Out, 8).Fill(0xEE);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(chain.TryRead(1, new byte[4]), Is.False);
            Assert.That(chain.TryWrite(0, new byte[5]), Is.False);
            Assert.That(chain.TryWrite(ulong.MaxValue, new byte[1]), Is.False);
            Assert.That(rig.Ram.Span(Out, 8).ToArray(), Is.EqualTo(new byte[] { 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE }));
        }
    }

    [TestCase((ushort)3, TestName = "Split queue size 3 (not a power of two)")]
    [TestCase((ushort)0, TestName = "Split queue size 0")]
    [TestCase((ushort)512, TestName = "Split queue size above the maximum")]
    public void An_invalid_split_queue_size_is_refused_at_enable(ushort size) =>
        RefusedAtEnable(0, size, VirtioQueueError.InvalidSize, _ => { });

    [Test]
    public void A_packed_queue_size_above_the_maximum_is_refused_at_enable() =>
        RefusedAtEnable(VirtioFeatures.RingPacked, 257, VirtioQueueError.InvalidSize, _ => { });

    [TestCase(8ul, 0ul, 0ul, TestName = "Descriptor table 8-aligned")]
    [TestCase(0ul, 1ul, 0ul, TestName = "Avail ring odd")]
    [TestCase(0ul, 0ul, 2ul, TestName = "Used ring 2-aligned")]
    public void Split_rings_not_aligned_are_refused_at_enable(ulong descriptor, ulong driver, ulong device) =>
        RefusedAtEnable(0, 8, VirtioQueueError.MisalignedRing, rig => Misalign(rig, descriptor, driver, device));

    [TestCase(0ul, 2ul, 0ul, TestName = "Packed driver event 2-aligned")]
    [TestCase(0ul, 0ul, 2ul, TestName = "Packed device event 2-aligned")]
    public void Packed_rings_not_aligned_are_refused_at_enable(ulong descriptor, ulong driver, ulong device) =>
        RefusedAtEnable(VirtioFeatures.RingPacked, 8, VirtioQueueError.MisalignedRing, rig => Misalign(rig, descriptor, driver, device));

    [Test]
    public void A_ring_wrapping_at_2_64_is_refused_at_enable() =>
        RefusedAtEnable(0, 8, VirtioQueueError.RingAddressWraps, rig => rig.Device.SetQueueDescriptorArea(0, ulong.MaxValue - 63));

    [Test]
    public void Packed_a_later_descriptor_with_the_wrong_wrap_counter() =>
        Packed(0, 4, (d, ram) =>
        {
            d.WriteDescriptor(1, Out, 4, 0, (ushort)(GuestPackedVirtqueue.AvailableFlags(wrap: false) | Write)); // lap 2's flags in lap 1
            d.WriteDescriptor(0, In, 4, 0, (ushort)(GuestPackedVirtqueue.AvailableFlags(wrap: true) | Next));
        }, VirtioQueueError.PackedWrapCounterMismatch);

    [Test]
    public void Packed_a_list_crossing_the_end_that_keeps_the_old_wrap_counter()
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked, size: 4);
        rig.Device.Echo = false;
        GuestPackedVirtqueue driver = rig.StartPacked();
        var chain = new VirtioDescriptorChain();
        for (int i = 0; i < 3; i++)
        {
            driver.Post(new[] { new GuestBuffer(In, 4, false) });
            rig.Queue.TryPop(chain);
            rig.Queue.Push(chain, 0);
        }

        // Position 3 (lap 1) chains on to position 0, which belongs to lap 2 but still carries lap 1's flags.
        driver.WriteDescriptor(0, Out, 4, 0, (ushort)(GuestPackedVirtqueue.AvailableFlags(wrap: true) | Write));
        driver.WriteDescriptor(3, In, 4, 0, (ushort)(GuestPackedVirtqueue.AvailableFlags(wrap: true) | Next));
        bool popped = rig.Queue.TryPop(chain);
        AssertBroken(rig, popped, VirtioQueueError.PackedWrapCounterMismatch);
    }

    [Test]
    public void Packed_a_list_longer_than_the_queue() =>
        Packed(0, 4, (d, ram) =>
        {
            for (int i = 3; i >= 0; i--)
            {
                d.WriteDescriptor(i, In, 4, 0, (ushort)(GuestPackedVirtqueue.AvailableFlags(wrap: true) | Next));
            }
        }, VirtioQueueError.ChainTooLong);

    [Test]
    public void Packed_a_list_mixing_direct_and_indirect_descriptors() =>
        Packed(VirtioFeatures.IndirectDescriptors, 4, (d, ram) =>
        {
            d.WriteDescriptor(1, Table, 16, 0, (ushort)(GuestPackedVirtqueue.AvailableFlags(wrap: true) | Indirect));
            d.WriteDescriptor(0, In, 4, 0, (ushort)(GuestPackedVirtqueue.AvailableFlags(wrap: true) | Next));
        }, VirtioQueueError.MixedIndirectChain);

    [Test]
    public void Packed_nested_indirect_tables() =>
        Packed(VirtioFeatures.IndirectDescriptors, 4, (d, ram) =>
        {
            ram.SetDescriptor(Table, Table + 0x100, 16, 0, Indirect);
            d.WriteDescriptor(0, Table, 16, 0, (ushort)(GuestPackedVirtqueue.AvailableFlags(wrap: true) | Indirect));
        }, VirtioQueueError.NestedIndirect);

    [Test]
    public void Packed_writable_before_readable() =>
        Packed(0, 4, (d, ram) =>
        {
            d.WriteDescriptor(1, In, 4, 0, GuestPackedVirtqueue.AvailableFlags(wrap: true));
            d.WriteDescriptor(0, Out, 4, 0, (ushort)(GuestPackedVirtqueue.AvailableFlags(wrap: true) | Next | Write));
        }, VirtioQueueError.WritableBeforeReadable);

    [Test]
    public void A_broken_queue_recovers_after_the_driver_resets_the_device()
    {
        var rig = new VirtioRig(0, size: 8);
        GuestSplitVirtqueue driver = rig.StartSplit();
        driver.PublishHead(8);
        rig.Kick();
        bool brokenBefore = rig.Queue.IsBroken;

        rig.Device.WriteStatus(0);
        rig.Ram.Span(VirtioRig.DriverArea, 4096).Clear();
        rig.Ram.Span(VirtioRig.DeviceArea, 4096).Clear();
        rig.Negotiate();
        rig.ConfigureQueue(8);
        GuestSplitVirtqueue fresh = rig.StartSplit();
        fresh.Post(new[] { new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true) });
        rig.Kick();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(brokenBefore, Is.True);
            Assert.That(rig.Queue.IsBroken, Is.False);
            Assert.That(rig.Device.Status & VirtioDeviceStatus.DeviceNeedsReset, Is.EqualTo(VirtioDeviceStatus.None));
            Assert.That(fresh.TryTakeUsed(out _, out uint length), Is.True);
            Assert.That(length, Is.EqualTo(4));
        }
    }

    private static void Split(ulong features, ushort size, Action<GuestSplitVirtqueue, TestGuestRam> post, VirtioQueueError expected)
    {
        var rig = new VirtioRig(features, size);
        GuestSplitVirtqueue driver = rig.StartSplit();
        post(driver, rig.Ram);
        int notifiedBefore = rig.Transport.UsedNotifications;
        Assert.That(() => rig.Kick(), Throws.Nothing);
        var chain = new VirtioDescriptorChain();
        bool popped = rig.Queue.TryPop(chain);
        AssertBroken(rig, popped, expected);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(driver.UsedIndex, Is.Zero);
            Assert.That(rig.Transport.UsedNotifications, Is.EqualTo(notifiedBefore));
            Assert.That(chain.IsOutstanding, Is.False);
        }
    }

    private static void Packed(ulong features, ushort size, Action<GuestPackedVirtqueue, TestGuestRam> post, VirtioQueueError expected)
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked | features, size);
        GuestPackedVirtqueue driver = rig.StartPacked();
        post(driver, rig.Ram);
        Assert.That(() => rig.Kick(), Throws.Nothing);
        var chain = new VirtioDescriptorChain();
        bool popped = rig.Queue.TryPop(chain);
        AssertBroken(rig, popped, expected);
        Assert.That(driver.TryTakeUsed(out _, out _), Is.False);
    }

    private static void RefusedAtEnable(ulong features, ushort size, VirtioQueueError expected, Action<VirtioRig> configure)
    {
        var rig = new VirtioRig(features, size);
        configure(rig);
        bool enabled = rig.Start();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(enabled, Is.False);
            Assert.That(rig.Queue.IsEnabled, Is.False);
            Assert.That(rig.Queue.Error, Is.EqualTo(expected));
            Assert.That(rig.Device.Status & VirtioDeviceStatus.DeviceNeedsReset, Is.EqualTo(VirtioDeviceStatus.DeviceNeedsReset));
        }

        // A notification to the refused queue does nothing.
        rig.Kick();
        Assert.That(rig.Device.Notified, Is.Zero);
    }

    private static void Misalign(VirtioRig rig, ulong descriptor, ulong driver, ulong device)
    {
        rig.Device.SetQueueDescriptorArea(0, VirtioRig.DescriptorArea + descriptor);
        rig.Device.SetQueueDriverArea(0, VirtioRig.DriverArea + driver);
        rig.Device.SetQueueDeviceArea(0, VirtioRig.DeviceArea + device);
    }

    /// <summary>DEVICE_NEEDS_RESET is set, and one config-change notification asked for (the driver is running).</summary>
    private static void AssertNeedsResetSignalled(VirtioRig rig)
    {
        Assert.That(rig.Device.Status & VirtioDeviceStatus.DeviceNeedsReset, Is.EqualTo(VirtioDeviceStatus.DeviceNeedsReset));
        Assert.That(rig.Transport.ConfigChanges, Is.EqualTo(1));
    }

    private static void AssertBroken(VirtioRig rig, bool popped, VirtioQueueError expected)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(popped, Is.False);
            Assert.That(rig.Queue.Error, Is.EqualTo(expected));
            Assert.That(rig.Queue.IsBroken, Is.True);
            AssertNeedsResetSignalled(rig);
        }
    }
}
