using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.Backends;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Store;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Tests.Xenstore;

/// <summary>A simulated host for the backend service: xenstore, a toolstack on a manual clock, simulated guests, captured logs.</summary>
internal sealed class BackendRig : IDisposable
{
    /// <summary>The virtio-mmio magic value ("virt"), register 0.</summary>
    public const uint MmioMagic = 0x7472_6976;

    private readonly List<SimulatedHypervisor> _guests = [];
    private readonly List<string> _files = [];
    private readonly CancellationTokenSource _guard = new(TimeSpan.FromSeconds(60));

    public BackendRig()
    {
        Toolstack = new SimulatedToolstack(Store, Clock);
    }

    public SimulatedXenStore Store { get; } = new();

    public SimulatedClock Clock { get; } = new();

    public SimulatedToolstack Toolstack { get; }

    public SimulatedBackendHypervisors Hypervisors { get; } = new();

    public CapturedLogs Logs { get; } = new();

    /// <summary>The loop threads of every device's server the next <see cref="StartService(IBackendDeviceFactory[])"/> starts (one by default).</summary>
    public int LoopThreads { get; set; } = 1;

    public XenstoreBackendService? Service { get; private set; }

    public Task? Running { get; private set; }

    /// <summary>Guards every wait of a test against a hang (never an assertion on time).</summary>
    public CancellationToken Guard => _guard.Token;

    public SimulatedHypervisor AddGuest(ushort domain, GuestArchitecture architecture = GuestArchitecture.Arm64)
    {
        var guest = new SimulatedHypervisor(new SimulationOptions { Architecture = architecture, Domain = domain, VcpuCount = 2 });
        _guests.Add(guest);
        Hypervisors.Add(guest);
        Toolstack.CreateDomain(domain);
        return guest;
    }

    public string Image(int size = 1 << 20)
    {
        string path = Path.Combine(Path.GetTempPath(), $"ioreqsdk-backend-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(path, new byte[size]);
        _files.Add(path);
        return path;
    }

    public XenstoreBackendService StartService(params IBackendDeviceFactory[] extra) => StartService(Store.Connect(0), Hypervisors, extra);

    /// <summary>The service on <paramref name="store"/> and <paramref name="hypervisors"/> (e.g. wrappers over a dom0 connection and <see cref="Hypervisors"/>).</summary>
    public XenstoreBackendService StartService(IXenStore store, IBackendHypervisors hypervisors, params IBackendDeviceFactory[] extra)
    {
        var options = new XenstoreBackendOptions { LoggerFactory = Logs, LoopThreads = LoopThreads }.AddStandardDevices();
        foreach (IBackendDeviceFactory factory in extra)
        {
            options.Factories.Add(factory);
        }

        Service = new XenstoreBackendService(store, hypervisors, options);
        Running = Task.Run(() => Service.RunAsync(CancellationToken.None));
        return Service;
    }

    /// <summary>Stops the service as SIGTERM does (from another thread) and waits for its teardown.</summary>
    public void StopService()
    {
        if (Service is null)
        {
            return;
        }

        Service.Dispose();
        Running!.Wait(Guard);
        Service = null;
    }

    public Task<bool> Until(string backendPath, XenbusState state) => Toolstack.WaitForStateAsync(backendPath, state, Guard);

    /// <summary>Waits until the service serves no device of <paramref name="domain"/> any more.</summary>
    public async Task UntilNoDeviceOf(ushort domain)
    {
        while (Service!.Devices.Any(d => d.FrontendDomain == domain) || Hypervisors.Held(domain) != 0)
        {
            Guard.ThrowIfCancellationRequested();
            await Task.Delay(5, Guard);
        }
    }

    /// <summary>Waits for a log line: the service writes a device's state before it logs why.</summary>
    public async Task<bool> UntilLogged(string fragment)
    {
        while (!Logs.Contains(fragment))
        {
            if (Guard.IsCancellationRequested)
            {
                return false;
            }

            await Task.Delay(5, CancellationToken.None);
        }

        return true;
    }

    public static uint ReadRegister(SimulatedHypervisor guest, ulong address, int offset) => (uint)guest.Vcpu(0).ReadMmio(address + (ulong)offset, 4);

    public void Dispose()
    {
        StopService();
        Toolstack.Dispose();
        foreach (SimulatedHypervisor guest in _guests)
        {
            guest.Dispose();
        }

        foreach (string file in _files)
        {
            File.Delete(file);
        }

        _guard.Dispose();
    }
}

/// <summary>Every log line, formatted, for the tests to read.</summary>
internal sealed class CapturedLogs : ILoggerFactory
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => [.. _lines];

    public bool Contains(string fragment) => _lines.Any(l => l.Contains(fragment, StringComparison.Ordinal));

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs logs) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            logs._lines.Enqueue($"{logLevel}: {formatter(state, exception)}");
    }
}
