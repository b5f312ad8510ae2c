using System;
using BenchmarkDotNet.Attributes;
using IoreqSdk.Abi;
using IoreqSdk.Benchmarks.Loopback;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks;

/// <summary>
/// A synchronous MMIO read through IoreqServer, with the same producer and the same notification (busy-poll or
/// eventfd) as the C floor in <c>benchmarks/native/slot_roundtrip.c</c>: the difference is the SDK's server.
/// </summary>
public class LoopbackRoundTripBenchmarks
{
    private LoopbackXen _xen = null!;
    private IoreqServer _server = null!;

    [Params(Notification.BusyPoll, Notification.EventFd)]
    public Notification Notification { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _xen = new LoopbackXen(GuestArchitecture.X86, 1, Notification);
        _server = new IoreqServer(_xen, new IoreqServerOptions { Domain = 1, BufferedMode = BufferedIoreqMode.Off });
        _server.AddDevice(new RegisterDevice(0xE000_0000));
        _server.Start();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _server.Dispose();
        _xen.Dispose();
    }

    [Benchmark]
    public ulong MmioRead() => _xen.RoundTrip(0, IoreqType.Copy, 0xE000_0010, 4, write: false, 0);
}
