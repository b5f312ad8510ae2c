using System;
using BenchmarkDotNet.Attributes;
using IoreqSdk.Abi;
using IoreqSdk.Benchmarks.Loopback;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks;

/// <summary>
/// A synchronous MMIO read through IoreqServer, with the producer written in C# the way
/// <c>benchmarks/native/slot_roundtrip.c</c>'s is, and the placement the paired runner uses: busy-polling (in the
/// loopback's channel, or by the server itself over Xen's event-channel semantics) with the producer on CPU 0 and the
/// server on CPU 1, eventfd with both on CPU 0. The ratios against C come from the paired
/// runner (<c>Paired/PairedRoundTrip.cs</c>); this measures the same server under BenchmarkDotNet, and its bytes/op.
/// </summary>
public class LoopbackRoundTripBenchmarks
{
    private LoopbackXen _xen = null!;
    private IoreqServer _server = null!;

    [Params(Notification.BusyPoll, Notification.ServerPolls, Notification.EventFd)]
    public Notification Notification { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // BenchmarkDotNet runs the global setup on the thread that runs the benchmark: pin the producer here.
        bool pin = Environment.ProcessorCount >= 2;
        if (pin)
        {
            ThreadAffinity.PinCurrentThread(0);
        }

        _xen = new LoopbackXen(GuestArchitecture.X86, 1, Notification, serverCpu: !pin ? -1 : Notification == Notification.EventFd ? 0 : 1);
        _server = _xen.CreateServer();
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
