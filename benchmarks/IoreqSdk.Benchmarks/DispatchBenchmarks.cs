using System;
using BenchmarkDotNet.Attributes;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Memory;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks;

/// <summary>
/// Decode + range lookup + device call + response for one MMIO request, with 1, 16 and 256 regions mapped — the same
/// cases as <c>benchmarks/native/dispatch.c</c>: the last region's register again and again (the range the previous
/// lookup found matches), and reads that each go to another region than the one before (the full binary search).
/// </summary>
public class DispatchBenchmarks
{
    // How many requests the scattered walk cycles through (a power of two: the index is masked).
    private const int Scatter = 64;

    private readonly IoRequest[] _scattered = new IoRequest[Scatter];
    private IoDispatcher _dispatcher = null!;
    private IoRequest _read;
    private IoRequest _write;
    private int _next;

    [Params(1, 16, 256)]
    public int Regions { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dispatcher = new IoDispatcher(new NoGuestMemory(), new DispatchCounters(), (_, _) => { });
        var starts = new ulong[Regions];
        for (int i = 0; i < Regions; i++)
        {
            var device = new RegisterDevice(0xE000_0000UL + ((ulong)i * 0x10_000));
            starts[i] = device.Region.InitialAddress!.Value;
            _dispatcher.AddRange(RegionKind.Mmio, starts[i], starts[i] + 0xFFF, device.Region);
        }

        ulong target = starts[Regions - 1];
        _read = new IoRequest { Type = IoreqType.Copy, Address = target + 0x10, Size = 4, Count = 1, Direction = IoreqDirection.Read };
        _write = new IoRequest { Type = IoreqType.Copy, Address = target + 0x10, Size = 4, Count = 1, Data = 0x1234_5678 };

        // The C baseline's walk: region (i * 7) mod n, a stride coprime to 16 and 256, so consecutive reads differ.
        for (int i = 0; i < Scatter; i++)
        {
            _scattered[i] = _read;
            _scattered[i].Address = starts[(i * 7) % Regions] + 0x10;
        }
    }

    [Benchmark]
    public ulong MmioRead() => _dispatcher.Dispatch(in _read);

    [Benchmark]
    public ulong MmioWrite() => _dispatcher.Dispatch(in _write);

    [Benchmark]
    public ulong MmioReadScattered() => _dispatcher.Dispatch(in _scattered[_next++ & (Scatter - 1)]);

    private sealed class NoGuestMemory : IGuestMemory
    {
        public bool TryRead(ulong address, Span<byte> destination) => false;

        public bool TryWrite(ulong address, ReadOnlySpan<byte> source) => false;
    }
}
