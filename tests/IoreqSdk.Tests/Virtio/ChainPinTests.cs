using System;
using System.Linq;
using System.Threading;
using IoreqSdk.Memory;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio;

/// <summary>
/// A chain's data as pinned host memory: the range asked for, piece by piece across segments and mapping windows, the
/// guest's own bytes in place; pins given back exactly once whoever releases (the worker, the push, a teardown), and
/// nothing pinned when any of it cannot be.
/// </summary>
[TestFixture]
public sealed class ChainPinTests
{
    private const ulong Data = VirtioRig.Buffers;

    [Test]
    public void The_pinned_range_is_the_guest_s_bytes_split_at_segments_and_windows()
    {
        var rig = new VirtioRig(0, pinnable: true);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();

        // Readable: 100 bytes, then 70 KiB that cross the test memory's 64 KiB window boundary at Buffers + 0x1_0000.
        ulong second = Data + 0x1000;
        driver.Post([new GuestBuffer(Data, 100, false), new GuestBuffer(second, 70 * 1024, false)]);
        var chain = new VirtioDescriptorChain();
        Assert.That(rig.Queue.TryPop(chain), Is.True);
        for (int i = 0; i < 100; i++)
        {
            rig.Ram.Span(Data, 100)[i] = (byte)i;
        }

        Assert.That(chain.TryPinReadable(50, 50 + (70 * 1024)), Is.True);
        HostBuffer[] pieces = chain.PinnedBuffers.ToArray();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(pieces.Select(p => p.Length), Is.EqualTo(new[] { 50, 0x1_0000 - 0x1000, (70 * 1024) - (0x1_0000 - 0x1000) }));
            Assert.That(pieces[0].AsSpan().ToArray(), Is.EqualTo(Enumerable.Range(50, 50).Select(b => (byte)b).ToArray()), "in place: the guest's bytes");
            Assert.That(chain.HasPins, Is.True);
            Assert.That(rig.Ram.PinsHeld, Is.EqualTo(3));
        }

        pieces[1].AsSpan()[0] = 0xEE;
        Assert.That(rig.Ram.Span(second, 1)[0], Is.EqualTo(0xEE), "and writes through a pin land in guest RAM");
        chain.ReleasePins();
        chain.ReleasePins();
        Assert.That((rig.Ram.PinsHeld, chain.HasPins, chain.PinnedBuffers.Length), Is.EqualTo((0, false, 0)), "released once, however often asked");
    }

    [Test]
    public void A_chain_from_before_its_queue_was_disabled_reaches_no_guest_memory()
    {
        // QueueReady = 0 (or a reset) gives the chain's buffers back to the driver: a device still holding the chain may
        // neither read, write nor pin them any more, though the chain object stays outstanding until it is pushed.
        var rig = new VirtioRig(0, pinnable: true);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        driver.Post([new GuestBuffer(Data, 16, false), new GuestBuffer(Data + 0x100, 16, true)]);
        var chain = new VirtioDescriptorChain();
        Assert.That(rig.Queue.TryPop(chain), Is.True);
        rig.Ram.Span(Data, 16).Fill(0x11);
        var read = new byte[16];
        Assert.That(chain.TryRead(0, read), Is.True, "current: it reads");

        rig.Device.DisableQueue(0);
        rig.Ram.Span(Data + 0x100, 16).Fill(0x22);
        byte[] stale = new byte[16];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(chain.IsOutstanding, Is.True);
            Assert.That(chain.IsCurrent, Is.False);
            Assert.That(chain.TryRead(0, stale), Is.False);
            Assert.That(stale, Is.All.Zero, "nothing copied out");
            Assert.That(chain.TryWrite(0, new byte[] { 0x33 }), Is.False);
            Assert.That(rig.Ram.Span(Data + 0x100, 16).ToArray(), Is.All.EqualTo(0x22), "nothing written");
            Assert.That(chain.TryPinReadable(0, 16), Is.False);
            Assert.That(rig.Ram.PinsHeld, Is.Zero);
            Assert.That(rig.Queue.Push(chain, 0), Is.False, "and the push drops it");
        }
    }

    [Test]
    public void A_push_releases_pins_still_held_and_the_worker_s_release_races_it_safely()
    {
        var rig = new VirtioRig(0, pinnable: true);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        var chain = new VirtioDescriptorChain();

        driver.Post([new GuestBuffer(Data, 4096, true)]);
        Assert.That(rig.Queue.TryPop(chain), Is.True);
        Assert.That(chain.TryPinWritable(0, 4096), Is.True);
        rig.Queue.Push(chain, 0);
        int afterPush = rig.Ram.PinsHeld;

        // Many rounds of a worker releasing while the loop pushes: exactly one release reaches the memory each time.
        for (int round = 0; round < 200; round++)
        {
            driver.Post([new GuestBuffer(Data, 4096, true)]);
            Assert.That(rig.Queue.TryPop(chain), Is.True);
            Assert.That(chain.TryPinWritable(0, 4096), Is.True);
            var worker = new Thread(chain.ReleasePins);
            worker.Start();
            chain.ReleasePins();
            worker.Join();
            rig.Queue.Push(chain, 0);
            while (driver.TryTakeUsed(out _, out _))
            {
            }
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(afterPush, Is.Zero);
            Assert.That(rig.Ram.PinsHeld, Is.Zero);
            Assert.That(rig.Ram.PinsGiven, Is.EqualTo(201));
        }
    }

    [Test]
    public void Nothing_is_pinned_when_part_of_the_range_is_not_RAM_or_the_request_is_out_of_bounds()
    {
        var rig = new VirtioRig(0, pinnable: true);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        var chain = new VirtioDescriptorChain();

        // The second segment lies past the end of RAM: the first one's pin goes back.
        driver.Post([new GuestBuffer(Data, 4096, true), new GuestBuffer(0x4000_0000, 4096, true)]);
        Assert.That(rig.Queue.TryPop(chain), Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(chain.TryPinWritable(0, 8192), Is.False, "a segment outside RAM");
            Assert.That(rig.Ram.PinsHeld, Is.Zero, "the pieces pinned before the failure went back");
            Assert.That(chain.TryPinWritable(0, 8193), Is.False, "past the writable part");
            Assert.That(chain.TryPinWritable(4096, 0), Is.False, "an empty range");
            Assert.That(chain.TryPinReadable(0, 1), Is.False, "no readable part");
            Assert.That(chain.TryPinWritable(0, 4096), Is.True, "what is RAM still pins");
            Assert.That(chain.TryPinWritable(0, 4096), Is.False, "one pinned range at a time");
        }

        chain.ReleasePins();
        rig.Queue.Push(chain, 0);
        Assert.That(chain.TryPinWritable(0, 1), Is.False, "a pushed chain holds no buffer to pin");
    }

    [Test]
    public void Memory_that_cannot_pin_and_a_range_beyond_the_limit_fall_back_to_the_copies()
    {
        var copies = new VirtioRig(0, pinnable: false);
        copies.Device.Echo = false;
        GuestSplitVirtqueue driver = copies.StartSplit();
        var chain = new VirtioDescriptorChain();
        driver.Post([new GuestBuffer(Data, 4096, true)]);
        Assert.That(copies.Queue.TryPop(chain), Is.True);

        var large = new VirtioRig(0, pinnable: true);
        large.Device.Echo = false;
        GuestSplitVirtqueue largeDriver = large.StartSplit();
        var largeChain = new VirtioDescriptorChain();

        // A chain may name more bytes than RAM holds (the same range again and again): the limit stops the pin first.
        largeDriver.Post([.. Enumerable.Repeat(new GuestBuffer(Data, 512 * 1024, true), 9)]);
        Assert.That(large.Queue.TryPop(largeChain), Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(chain.TryPinWritable(0, 4096), Is.False);
            Assert.That(chain.TryWrite(0, new byte[16]), Is.True, "the copies serve it");
            Assert.That(largeChain.WritableLength, Is.GreaterThan((ulong)VirtioDescriptorChain.MaxPinnedLength));
            Assert.That(largeChain.TryPinWritable(0, (ulong)VirtioDescriptorChain.MaxPinnedLength + 1), Is.False);
            Assert.That(large.Ram.PinsGiven, Is.Zero);
        }
    }
}
