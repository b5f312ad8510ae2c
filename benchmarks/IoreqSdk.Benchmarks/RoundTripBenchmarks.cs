using BenchmarkDotNet.Attributes;
using IoreqSdk.Server;
using IoreqSdk.Simulation;

namespace IoreqSdk.Benchmarks;

/// <summary>
/// A synchronous guest → device → guest round trip over the simulated Xen, between two threads: the guest's vCPU
/// (the benchmark thread) and the server's event loop. Notifications are the simulation's event channels
/// (a semaphore each way), so this is a two-thread wake-up round trip plus the SDK's work.
/// </summary>
public class RoundTripBenchmarks
{
    private const ulong Address = 0xFEB0_0000;
    private SimulatedHypervisor _xen = null!;
    private IoreqServer _server = null!;
    private SimulatedVcpu _cpu = null!;

    [GlobalSetup]
    public void Setup()
    {
        _xen = new SimulatedHypervisor();
        _server = new IoreqServer(_xen, new IoreqServerOptions { Domain = _xen.Domain });
        _server.AddDevice(new RegisterDevice(Address));
        _server.Start();
        _cpu = _xen.Vcpu(0);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _server.Dispose();
        _xen.Dispose();
    }

    [Benchmark]
    public ulong MmioReadRoundTrip() => _cpu.ReadMmio(Address + 8, 4);
}
