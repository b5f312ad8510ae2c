using System.Runtime.InteropServices;
using System.Threading;
using IoreqSdk.Memory;
using IoreqSdk.Simulation;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>
/// The map cache's pins: guest RAM mapped a 256 KiB window at a time and kept for the next pin; a window dropped by an
/// INVALIDATE, an eviction or the disposal stays mapped while a pin holds it and is unmapped by its last release, from
/// whichever thread releases — so no mapping leaks and none disappears under I/O in flight.
/// </summary>
[TestFixture]
public sealed class GuestMemoryPinTests
{
    private const int Window = 256 * 1024;

    [Test]
    public void A_pin_is_the_guest_s_memory_and_pins_in_one_window_share_its_mapping()
    {
        using var xen = new SimulatedHypervisor();
        using var cache = new GuestMemoryCache(xen, xen.Domain, capacity: 4);
        xen.Ram[0x1_2345] = 0xA7;
        int before = xen.OutstandingGuestMappings;

        Assert.That(cache.TryPin(xen.RamBase + 0x1_2345, 100, out HostBuffer first, out GuestMemoryPin firstPin), Is.True);
        Marshal.WriteByte(first.Address, 1, 0x5C);
        Assert.That(cache.TryPin(xen.RamBase + 0x3_0000, 8192, out HostBuffer second, out GuestMemoryPin secondPin), Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.Length, Is.EqualTo(100));
            Assert.That(Marshal.ReadByte(first.Address), Is.EqualTo(0xA7), "the pin maps the guest's byte");
            Assert.That(xen.Ram[0x1_2346], Is.EqualTo(0x5C), "and writes through it reach guest RAM");
            Assert.That((long)(second.Address - first.Address), Is.EqualTo(0x3_0000L - 0x1_2345), "one window, one mapping");
            Assert.That(cache.PinnedMappings.WindowMaps, Is.EqualTo(1));
            Assert.That(xen.OutstandingGuestMappings - before, Is.EqualTo(1));
        }

        firstPin.Release();
        secondPin.Release();
        Assert.That(xen.OutstandingGuestMappings - before, Is.EqualTo(1), "an unpinned window stays mapped for the next pin");
        cache.Invalidate();
        Assert.That(xen.OutstandingGuestMappings, Is.EqualTo(before), "an INVALIDATE unmaps a window no pin holds");
    }

    [Test]
    public void A_pin_ends_at_its_window_s_end_and_the_rest_is_pinned_from_the_next()
    {
        using var xen = new SimulatedHypervisor();
        using var cache = new GuestMemoryCache(xen, xen.Domain);
        ulong windowEnd = ((xen.RamBase / Window) + 1) * Window;

        Assert.That(cache.TryPin(windowEnd - 512, 4096, out HostBuffer head, out GuestMemoryPin headPin), Is.True);
        Assert.That(cache.TryPin(windowEnd, 4096 - 512, out HostBuffer tail, out GuestMemoryPin tailPin), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(head.Length, Is.EqualTo(512), "as much as the window holds");
            Assert.That(tail.Length, Is.EqualTo(4096 - 512));
            Assert.That(cache.PinnedMappings.WindowMaps, Is.EqualTo(2));
        }

        headPin.Release();
        tailPin.Release();
    }

    [Test]
    public void An_INVALIDATE_leaves_a_pinned_window_mapped_until_its_release_from_another_thread()
    {
        using var xen = new SimulatedHypervisor();
        using var cache = new GuestMemoryCache(xen, xen.Domain);
        int before = xen.OutstandingGuestMappings;
        Assert.That(cache.TryPin(xen.RamBase + 0x8000, 4096, out HostBuffer buffer, out GuestMemoryPin pin), Is.True);

        cache.Invalidate();
        int duringIo = xen.OutstandingGuestMappings - before;
        buffer.AsSpan().Fill(0x3C); // the worker's I/O, still landing in the mapping
        var release = new Thread(() => pin.Release());
        release.Start();
        release.Join();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(duringIo, Is.EqualTo(1), "the pinned window outlives the INVALIDATE");
            Assert.That(xen.Ram[0x8FFF], Is.EqualTo(0x3C));
            Assert.That(xen.OutstandingGuestMappings, Is.EqualTo(before), "the last release unmapped it");
            Assert.That(cache.TryPin(xen.RamBase + 0x8000, 16, out _, out GuestMemoryPin again), Is.True, "a new pin maps the window afresh");
            Assert.That(cache.PinnedMappings.WindowMaps, Is.EqualTo(2));
            again.Release();
        }
    }

    [Test]
    public void A_pinned_window_keeps_its_slot_a_piece_of_a_colliding_window_is_mapped_on_its_own_and_an_unpinned_one_is_evicted()
    {
        // 32 windows of 256 KiB: windows 8 MiB apart share a slot.
        using var xen = new SimulatedHypervisor(new SimulationOptions { RamSize = 16 << 20 });
        using var cache = new GuestMemoryCache(xen, xen.Domain, pinWindows: 32);
        int before = xen.OutstandingGuestMappings;
        Assert.That(cache.TryPin(xen.RamBase, 4096, out HostBuffer low, out GuestMemoryPin lowPin), Is.True);
        Assert.That(cache.TryPin(xen.RamBase + (8 << 20), 8192, out _, out GuestMemoryPin highPin), Is.True);
        int both = xen.OutstandingGuestMappings - before;
        int detached = cache.PinnedMappings.DetachedFrames;
        low.AsSpan()[0] = 0x11;
        highPin.Release();
        int afterHigh = xen.OutstandingGuestMappings - before;
        lowPin.Release();
        Assert.That(cache.TryPin(xen.RamBase + (8 << 20), 16, out _, out GuestMemoryPin again), Is.True);
        again.Release();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(both, Is.EqualTo(2), "the pinned window and the colliding piece");
            Assert.That(detached, Is.EqualTo(2), "the piece's two frames count outside the table");
            Assert.That(cache.PinnedMappings.PieceMaps, Is.EqualTo(1));
            Assert.That(xen.Ram[0], Is.EqualTo(0x11));
            Assert.That(afterHigh, Is.EqualTo(1), "the piece went with its pin; the window stays cached");
            Assert.That(cache.PinnedMappings.WindowMaps, Is.EqualTo(2), "once unpinned, the old window was evicted for the new one");
            Assert.That(xen.OutstandingGuestMappings - before, Is.EqualTo(1));
            Assert.That(cache.PinnedMappings.DetachedFrames, Is.Zero);
        }
    }

    [Test]
    public void A_guest_alternating_between_colliding_windows_maps_no_more_than_the_table_and_its_budget()
    {
        // One window of 64 frames: the budget outside the table is 64 frames too.
        using var xen = new SimulatedHypervisor(new SimulationOptions { RamSize = 16 << 20 });
        using var cache = new GuestMemoryCache(xen, xen.Domain, pinWindows: 1);
        int before = xen.OutstandingGuestMappings;
        var pins = new System.Collections.Generic.List<GuestMemoryPin>();
        int refused = 0;

        // A chain of many small segments alternating between two windows of the one slot, all held at once.
        for (int i = 0; i < 400; i++)
        {
            ulong address = xen.RamBase + (ulong)((i % 2) * (4 << 20)) + (ulong)(i * 512 % 0x3_0000);
            if (cache.TryPin(address, 512, out _, out GuestMemoryPin pin))
            {
                pins.Add(pin);
            }
            else
            {
                refused++;
            }
        }

        int mappedFrames = 0;
        int held = xen.OutstandingGuestMappings - before;
        mappedFrames = 64 + cache.PinnedMappings.DetachedFrames;
        foreach (GuestMemoryPin pin in pins)
        {
            pin.Release();
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(mappedFrames, Is.LessThanOrEqualTo(128), "the table's window and at most as many frames beside it");
            Assert.That(held, Is.LessThanOrEqualTo(1 + 64), "one mapping per detached piece at most");
            Assert.That(refused, Is.GreaterThan(0), "past the budget, pins are refused (the copies serve)");
            Assert.That(cache.PinnedMappings.DetachedFrames, Is.Zero, "every piece unmapped with its pin");
            Assert.That(xen.OutstandingGuestMappings - before, Is.EqualTo(1), "the table's window stays cached");
        }
    }

    [Test]
    public void Drop_and_release_racing_unmap_exactly_once()
    {
        using var xen = new SimulatedHypervisor();
        using var cache = new GuestMemoryCache(xen, xen.Domain);
        int before = xen.OutstandingGuestMappings;
        for (int round = 0; round < 500; round++)
        {
            Assert.That(cache.TryPin(xen.RamBase + 0x1000, 64, out _, out GuestMemoryPin pin), Is.True);
            using var go = new System.Threading.ManualResetEventSlim();
            var worker = new System.Threading.Thread(() =>
            {
                go.Wait();
                pin.Release();
            });
            worker.Start();
            go.Set();
            cache.Invalidate(); // the loop's drop, racing the worker's release
            worker.Join();
            Assert.That(xen.OutstandingGuestMappings, Is.EqualTo(before), $"round {round}: unmapped once, by whichever came second");
        }

        Assert.That(cache.PinnedMappings.DetachedFrames, Is.Zero);
    }

    [Test]
    public void A_window_with_a_frame_that_is_not_RAM_pins_its_RAM_pieces_one_by_one()
    {
        using var xen = new SimulatedHypervisor();
        using var cache = new GuestMemoryCache(xen, xen.Domain);
        int before = xen.OutstandingGuestMappings;
        ulong window = ((xen.RamBase / Window) + 1) * Window;
        xen.RemoveFrame((window >> 12) + 5);

        bool pinned = cache.TryPin(window + 0x1000, 8192, out HostBuffer piece, out GuestMemoryPin pin);
        bool hole = cache.TryPin(window + 0x5000, 16, out _, out _);
        int held = xen.OutstandingGuestMappings - before;
        pin.Release();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(pinned, Is.True);
            Assert.That(piece.Length, Is.EqualTo(8192));
            Assert.That(hole, Is.False, "a frame the guest gave away is not pinned");
            Assert.That(cache.PinnedMappings.PieceMaps, Is.EqualTo(1));
            Assert.That(held, Is.EqualTo(1));
            Assert.That(xen.OutstandingGuestMappings, Is.EqualTo(before), "a one-off mapping goes with its pin");
        }
    }

    [Test]
    public void Nothing_outside_RAM_nor_after_disposal_is_pinned_and_a_pin_held_at_disposal_unmaps_at_its_release()
    {
        using var xen = new SimulatedHypervisor();
        var cache = new GuestMemoryCache(xen, xen.Domain);
        int before = xen.OutstandingGuestMappings;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(cache.TryPin(xen.RamBase + (ulong)xen.Ram.Length, 16, out _, out _), Is.False, "past the end of RAM");
            Assert.That(cache.TryPin(ulong.MaxValue - 15, 16, out _, out _), Is.False, "the top of the address space");
            Assert.That(cache.TryPin(xen.RamBase, 0, out _, out _), Is.False, "an empty range");
        }

        Assert.That(cache.TryPin(xen.RamBase + 0x4000, 16, out _, out GuestMemoryPin pin), Is.True);
        cache.Dispose();
        int atDisposal = xen.OutstandingGuestMappings - before;
        bool afterDisposal = cache.TryPin(xen.RamBase + 0x4000, 16, out _, out _);
        pin.Release();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(atDisposal, Is.EqualTo(1));
            Assert.That(afterDisposal, Is.False);
            Assert.That(xen.OutstandingGuestMappings, Is.EqualTo(before));
        }
    }

    [Test]
    public void The_simulated_domain_s_memory_outlives_it_while_a_pin_maps_it_as_Xen_keeps_mapped_pages()
    {
        var xen = new SimulatedHypervisor();
        var cache = new GuestMemoryCache(xen, xen.Domain);
        Assert.That(cache.TryPin(xen.RamBase + 0x2000, 4096, out HostBuffer buffer, out GuestMemoryPin pin), Is.True);
        cache.Dispose();
        xen.Dispose();

        // A worker's I/O still landing in the pinned buffer after the domain is gone: the memory is still there.
        buffer.AsSpan().Fill(0x77);
        byte last = buffer.AsSpan()[4095];
        int held = xen.OutstandingGuestMappings;
        pin.Release();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(last, Is.EqualTo(0x77));
            Assert.That(held, Is.EqualTo(1));
            Assert.That(xen.OutstandingGuestMappings, Is.Zero, "the last release unmapped it, and the memory went with it");
            Assert.That(() => xen.MapGuestFrames(xen.Domain, xen.RamBase >> 12, 1, writable: true), Throws.InstanceOf<IoreqSdk.Hypervisor.HypervisorException>(), "a gone domain maps nothing");
        }
    }
}
