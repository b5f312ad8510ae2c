using System.Runtime.InteropServices;
using IoreqSdk.Memory;
using IoreqSdk.Simulation;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>The map cache's host addresses: given inside one page only, and stale — the generation moves — whenever a mapping is dropped.</summary>
[TestFixture]
public sealed class GuestMemoryCacheTests
{
    [Test]
    public void AHostAddressIsTheGuestPageAndStaysValidWhileTheGenerationHolds()
    {
        using var xen = new SimulatedHypervisor();
        using var cache = new GuestMemoryCache(xen, xen.Domain, capacity: 4);
        xen.Ram[0x2345] = 0xA7;

        Assert.That(cache.TryGetHostAddress(xen.RamBase + 0x2345, 16, out nint host), Is.True);
        long generation = cache.MappingGeneration;
        Marshal.WriteByte(host, 1, 0x5C);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Marshal.ReadByte(host), Is.EqualTo(0xA7), "the host address maps the guest's byte");
            Assert.That(xen.Ram[0x2346], Is.EqualTo(0x5C), "and writes reach guest RAM");
            Assert.That(cache.TryGetHostAddress(xen.RamBase + 0x2000, 4096, out nint again), Is.True);
            Assert.That(again, Is.EqualTo(host - 0x345), "a hit: the same mapping");
            Assert.That(cache.MappingGeneration, Is.EqualTo(generation), "hits drop nothing");
        }
    }

    [Test]
    public void OnlyARangeInsideOnePageOfRamIsGiven()
    {
        using var xen = new SimulatedHypervisor();
        using var cache = new GuestMemoryCache(xen, xen.Domain, capacity: 4);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(cache.TryGetHostAddress(xen.RamBase + 0xFF0, 32, out _), Is.False, "across a page boundary: not contiguous here");
            Assert.That(cache.TryGetHostAddress(xen.RamBase, 0, out _), Is.False);
            Assert.That(cache.TryGetHostAddress(xen.RamBase + (ulong)xen.Ram.Length, 8, out _), Is.False, "past the end of RAM");
            Assert.That(cache.TryGetHostAddress(ulong.MaxValue - 3, 4, out _), Is.False);
        }
    }

    [Test]
    public void EvictionInvalidateAndDisposalMoveTheGenerationOn()
    {
        using var xen = new SimulatedHypervisor();
        var cache = new GuestMemoryCache(xen, xen.Domain, capacity: 2);
        Assert.That(cache.TryGetHostAddress(xen.RamBase, 8, out _), Is.True);
        long first = cache.MappingGeneration;

        // Frames 0 and 2 share a slot of a two-entry direct-mapped cache: mapping 2 evicts 0.
        Assert.That(cache.TryGetHostAddress(xen.RamBase + 0x2000, 8, out _), Is.True);
        long afterEviction = cache.MappingGeneration;
        cache.Invalidate();
        long afterInvalidate = cache.MappingGeneration;
        cache.Dispose();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(afterEviction, Is.Not.EqualTo(first));
            Assert.That(afterInvalidate, Is.Not.EqualTo(afterEviction));
            Assert.That(cache.MappingGeneration, Is.Not.EqualTo(afterInvalidate));
            Assert.That(cache.TryGetHostAddress(xen.RamBase, 8, out _), Is.False, "nothing is mapped after disposal");
            Assert.That(xen.OutstandingGuestMappings, Is.Zero);
        }
    }
}
