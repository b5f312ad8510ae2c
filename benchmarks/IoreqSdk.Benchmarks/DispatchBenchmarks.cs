using System;
using BenchmarkDotNet.Attributes;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Memory;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks;

/// <summary>Decode + range lookup + device call + response for one MMIO request, with 1, 16 and 256 regions mapped.</summary>
public class DispatchBenchmarks
{
    private IoDispatcher _dispatcher = null!;
    private IoRequest _read;
    private IoRequest _write;

    [Params(1, 16, 256)]
    public int Regions { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dispatcher = new IoDispatcher(new NoGuestMemory(), new IoreqServerStatistics(), (_, _) => { });
        ulong target = 0;
        for (int i = 0; i < Regions; i++)
        {
            var device = new RegisterDevice(0xE000_0000UL + ((ulong)i * 0x10_000));
            _dispatcher.AddRange(RegionKind.Mmio, device.Region.InitialAddress!.Value, device.Region.InitialAddress!.Value + 0xFFF, device.Region);
            target = device.Region.InitialAddress!.Value;
        }

        // The last region mapped: the binary search walks its full depth.
        _read = new IoRequest { Type = IoreqType.Copy, Address = target + 0x10, Size = 4, Count = 1, Direction = IoreqDirection.Read };
        _write = new IoRequest { Type = IoreqType.Copy, Address = target + 0x10, Size = 4, Count = 1, Data = 0x1234_5678 };
    }

    [Benchmark]
    public ulong MmioRead() => _dispatcher.Dispatch(in _read);

    [Benchmark]
    public ulong MmioWrite() => _dispatcher.Dispatch(in _write);

    private sealed class NoGuestMemory : IGuestMemory
    {
        public bool TryRead(ulong address, Span<byte> destination) => false;

        public bool TryWrite(ulong address, ReadOnlySpan<byte> source) => false;
    }
}
