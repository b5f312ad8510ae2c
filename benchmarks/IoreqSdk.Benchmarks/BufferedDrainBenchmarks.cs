using System;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Memory;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks;

/// <summary>Draining a full buffered ring (510 single-slot VGA writes) through the dispatcher to a device, per entry.</summary>
public unsafe class BufferedDrainBenchmarks
{
    private const int Entries = 510;
    private nint _memory;
    private BufferedIoPage _ring;
    private IoDispatcher _dispatcher = null!;
    private IoreqServerStatistics _statistics = null!;
    private readonly Action<long> _ignore = _ => { };
    private readonly BufferedIoRequest[] _entries = new BufferedIoRequest[Entries];

    [GlobalSetup]
    public void Setup()
    {
        _memory = (nint)NativeMemory.AlignedAlloc(4096, 4096);
        new Span<byte>((void*)_memory, 4096).Clear();
        _ring = new BufferedIoPage(_memory);
        _statistics = new IoreqServerStatistics();
        _dispatcher = new IoDispatcher(new NoGuestMemory(), _statistics.Requests, (_, _) => { });
        var vga = new RegisterDevice(0xA0000, 0x20000);
        _dispatcher.AddRange(RegionKind.Mmio, 0xA0000, 0xBFFFF, vga.Region);
        for (uint i = 0; i < Entries; i++)
        {
            _entries[i] = BufferedIoRequest.Create(IoreqType.Copy, IoreqDirection.Write, 4, 0xA0000 + ((i * 4) & 0xFFFF), i);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree((void*)_memory);

    [Benchmark(OperationsPerInvoke = Entries)]
    public void FillAndDrain()
    {
        // The producer's side is one 4 KiB copy of pre-built entries (about 1% of the drain's time): reset the
        // pointers to 0, copy 510 entries into slots 0-509, publish the write pointer.
        _ring.ReadPointersAcquire(out uint read, out uint write);
        _ring.CompareExchangePointers(read, write, 0, 0);
        _entries.AsSpan().CopyTo(new Span<BufferedIoRequest>((void*)(_memory + BufferedIoPage.SlotsOffset), Entries));
        _ring.PublishWritePointer(Entries);

        BufferedRingConsumer.Drain(_ring, _dispatcher, _statistics, _ignore);
    }

    private sealed class NoGuestMemory : IGuestMemory
    {
        public bool TryRead(ulong address, Span<byte> destination) => false;

        public bool TryWrite(ulong address, ReadOnlySpan<byte> source) => false;
    }
}
