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
    public void An_evicted_pinned_window_stays_mapped_until_released_and_its_slot_serves_the_new_window()
    {
        // 32 windows of 256 KiB: windows 8 MiB apart share a slot.
        using var xen = new SimulatedHypervisor(new SimulationOptions { RamSize = 16 << 20 });
        using var cache = new GuestMemoryCache(xen, xen.Domain, pinWindows: 32);
        int before = xen.OutstandingGuestMappings;
        Assert.That(cache.TryPin(xen.RamBase, 4096, out HostBuffer low, out GuestMemoryPin lowPin), Is.True);
        Assert.That(cache.TryPin(xen.RamBase + (8 << 20), 4096, out _, out GuestMemoryPin highPin), Is.True);
        int both = xen.OutstandingGuestMappings - before;
        low.AsSpan()[0] = 0x11;
        lowPin.Release();
        int afterLow = xen.OutstandingGuestMappings - before;
        highPin.Release();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(both, Is.EqualTo(2), "the evicted window is still pinned");
            Assert.That(xen.Ram[0], Is.EqualTo(0x11));
            Assert.That(afterLow, Is.EqualTo(1), "its release unmapped it; the new window stays cached");
            Assert.That(cache.PinnedMappings.MappedWindows, Is.EqualTo(1));
        }
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
