using System;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Memory;
using IoreqSdk.Pci;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Pci;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>The device's view of guest memory through the transport: bus-master DMA, in-place ring addresses included.</summary>
[TestFixture]
public sealed class VirtioPciDmaTests
{
    [Test]
    public void Host_addresses_pass_through_only_while_bus_mastering_is_on_and_turning_it_off_moves_the_generation()
    {
        var inner = new DirectMemory();
        var transport = new VirtioPciTransport(new PciEchoDevice());
        transport.Attach(new MemoryContext(inner));
        var memory = (IDirectGuestMemory)((IVirtioTransport)transport).Memory;
        byte[] buffer = new byte[4];

        bool offAddress = memory.TryGetHostAddress(0x1000, 16, out _);
        bool offRead = memory.TryRead(0x1000, buffer);
        transport.WriteConfig(PciConfigRegisters.Command, 2, PciConfigRegisters.CommandBusMaster);
        long onGeneration = memory.MappingGeneration;
        bool onAddress = memory.TryGetHostAddress(0x1000, 16, out nint host);
        bool onRead = memory.TryRead(0x1000, buffer);
        inner.Generation++;
        long afterInvalidate = memory.MappingGeneration;
        transport.WriteConfig(PciConfigRegisters.Command, 2, 0);
        long afterOff = memory.MappingGeneration;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(offAddress, Is.False);
            Assert.That(offRead, Is.False);
            Assert.That(onAddress, Is.True);
            Assert.That(host, Is.EqualTo((nint)0x7000_1000));
            Assert.That(onRead, Is.True);
            Assert.That(afterInvalidate, Is.Not.EqualTo(onGeneration), "the server memory's changes show");
            Assert.That(afterOff, Is.Not.EqualTo(afterInvalidate), "bus mastering off: addresses kept from before are stale");
            Assert.That(memory.TryGetHostAddress(0x1000, 16, out _), Is.False);
            Assert.That(transport.RefusedDma, Is.EqualTo(1));
        }
    }

    private sealed class DirectMemory : IDirectGuestMemory
    {
        public long Generation { get; set; }

        public long MappingGeneration => Generation;

        public bool TryRead(ulong address, Span<byte> destination) => true;

        public bool TryWrite(ulong address, ReadOnlySpan<byte> source) => true;

        public bool TryGetHostAddress(ulong address, int length, out nint hostAddress)
        {
            hostAddress = (nint)(0x7000_0000 + (long)address);
            return true;
        }
    }

    private sealed class MemoryContext : IDeviceContext
    {
        public MemoryContext(IGuestMemory memory) => Memory = memory;

        public long RunNumber => 1;

        public IGuestMemory Memory { get; }

        public void MapRegion(DeviceRegion region, ulong address)
        {
        }

        public void UnmapRegion(DeviceRegion region)
        {
        }

        public void Post(Action work) => work();

        public bool TryPost(Action work)
        {
            work();
            return true;
        }

        public bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion) => false;

        public bool TryRunOffLoop(OffLoopWork work) => false;

        public IOffLoopWorker CreateOffLoopWorker(string name, int threadCount, int capacity) => throw new NotSupportedException();
    }
}
