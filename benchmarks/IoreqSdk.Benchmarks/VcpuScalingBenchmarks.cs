using System;
using System.Threading;
using BenchmarkDotNet.Attributes;
using IoreqSdk.Abi;
using IoreqSdk.Benchmarks.Loopback;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks;

/// <summary>
/// 1, 4 and 16 vCPUs issuing MMIO reads at once to one server (one loop thread), eventfd notification: the time per
/// request as the server's throughput sees it. On this 2-core machine the vCPU threads and the loop share two cores.
/// </summary>
public class VcpuScalingBenchmarks
{
    private const int TotalRequests = 2_000;

    private LoopbackXen _xen = null!;
    private IoreqServer _server = null!;
    private Thread[] _threads = null!;
    private Barrier _start = null!;
    private CountdownEvent _done = null!;
    private volatile bool _stopping;

    [Params(1, 4, 16)]
    public int Vcpus { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _xen = new LoopbackXen(GuestArchitecture.X86, Vcpus, Notification.EventFd);
        _server = _xen.CreateServer();
        _server.AddDevice(new RegisterDevice(0xE000_0000));
        _server.Start();
        _start = new Barrier(Vcpus + 1);
        _done = new CountdownEvent(Vcpus);
        _threads = new Thread[Vcpus];
        for (int i = 0; i < Vcpus; i++)
        {
            int vcpu = i;
            _threads[i] = new Thread(() => Vcpu(vcpu)) { IsBackground = true, Name = $"vcpu{vcpu}" };
            _threads[i].Start();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stopping = true;
        _start.SignalAndWait();
        foreach (Thread thread in _threads)
        {
            thread.Join();
        }

        _server.Dispose();
        _xen.Dispose();
    }

    /// <summary>The vCPUs share <see cref="TotalRequests"/> reads equally; BenchmarkDotNet divides by the total.</summary>
    [Benchmark(OperationsPerInvoke = TotalRequests)]
    public void MmioReads()
    {
        _done.Reset();
        _start.SignalAndWait();
        _done.Wait();
    }

    private void Vcpu(int vcpu)
    {
        while (true)
        {
            _start.SignalAndWait();
            if (_stopping)
            {
                return;
            }

            for (int i = 0; i < TotalRequests / Vcpus; i++)
            {
                _xen.RoundTrip(vcpu, IoreqType.Copy, 0xE000_0010, 4, write: false, 0);
            }

            _done.Signal();
        }
    }
}
