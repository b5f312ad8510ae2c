using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.Backends;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Store;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// One host for the xenstore target: a simulated xenstored with a toolstack in dom0, guests 1 (Arm64) and 2 (x86) with a
/// simulated Xen each, guest 3 known to xenstore but not to Xen, and a <see cref="XenstoreBackendService"/> serving the
/// standard devices; the oracles that watch the service while an input runs and check it at the end.
/// </summary>
internal sealed class XenstoreRig : IDisposable
{
    /// <summary>How long the service may take to handle what one operation did before the input is called a hang.</summary>
    public static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The guest that gets the well-formed device every input ends with.</summary>
    public const ushort LastGuest = 4;

    private static readonly bool s_trace = Environment.GetEnvironmentVariable("FUZZ_TRACE") == "1";

    private readonly Dictionary<ushort, SimulatedHypervisor> _guests = [];
    private readonly Dictionary<string, (ushort Domain, ushort Server)> _served = new(StringComparer.Ordinal);
    private readonly List<string> _failures = [];
    private readonly IXenStore _checker;
    private readonly SettlingXenStore _serviceStore;
    private readonly Task _running;
    private readonly Dictionary<ushort, IXenStore> _guestStores = [];
    private bool _stopped;

    // Set for an operation that writes more than once (a burst, a directory and its frontend, a destroy's removals):
    // the service handles the first writes' events while the later ones land, so what its handlers read of xenstore
    // may be the harness's later write, not the service's own (even once the writes are done: the service may have
    // written before and raised its event after). Their checks of xenstore skip such an operation; an operation that
    // writes once (or commits one transaction) is checked. Written by the harness's thread, read on the service's.
    private volatile bool _racing;

    public XenstoreRig(int watchQueueCapacity, int maxDevices, IBackendDeviceFactory? extra = null)
    {
        Toolstack = new SimulatedToolstack(Store, new SimulatedClock());
        Dom0 = Store.Connect(0);
        _checker = Store.Connect(0);
        AddGuest(1, GuestArchitecture.Arm64);
        AddGuest(2, GuestArchitecture.X86);
        Toolstack.CreateDomain(3);
        foreach (ushort domain in XenstoreVocabulary.Domains)
        {
            _guestStores[domain] = Store.Connect(domain);
        }

        var options = new XenstoreBackendOptions { MaxDevices = maxDevices, LoggerFactory = new FaultLog(this) }.AddStandardDevices();
        if (extra is not null)
        {
            options.Factories.Add(extra);
        }

        _serviceStore = new SettlingXenStore(Store.Connect(0, watchQueueCapacity), Dom0, SettleTimeout);
        Service = new XenstoreBackendService(_serviceStore, Hypervisors, options);
        Service.DeviceServed += (_, e) => OnServed(e.Device);
        Service.DeviceClosed += (_, e) => OnClosed(e.Device);
        _running = Task.Run(() => Service.RunAsync(CancellationToken.None));
        Settle("the service's start");
    }

    public SimulatedXenStore Store { get; } = new();

    public SimulatedToolstack Toolstack { get; }

    public SimulatedBackendHypervisors Hypervisors { get; } = new();

    /// <summary>The toolstack's own connection, for writes the simulated toolstack has no step for.</summary>
    public IXenStore Dom0 { get; }

    public XenstoreBackendService Service { get; }

    /// <summary>A guest's own connection (unprivileged: it may write only what it owns or was given).</summary>
    public IXenStore GuestStore(ushort domain) => _guestStores[domain];

    /// <summary>The simulated Xen of a guest that has one.</summary>
    public SimulatedHypervisor? Guest(ushort domain) => _guests.TryGetValue(domain, out SimulatedHypervisor? guest) ? guest : null;

    /// <summary>Waits until the service has handled everything so far; fails the input if it hangs, stopped, or an oracle saw something.</summary>
    /// <summary>An operation begins: one that writes more than once makes the service's handlers skip their checks of xenstore until the next.</summary>
    public void BeginOperation(bool writesMoreThanOnce) => _racing = writesMoreThanOnce;

    public void Settle(string after)
    {
        if (!_serviceStore.Settle(() => !_running.IsCompleted))
        {
            throw new FuzzFailureException(_running.IsCompleted
                ? $"the backend service stopped serving after {after}: {_running.Exception?.GetBaseException().ToString() ?? "it returned"}"
                : $"the backend service did not handle the events of {after} within {SettleTimeout.TotalSeconds} s (hang)");
        }

        lock (_failures)
        {
            if (_failures.Count > 0)
            {
                throw new FuzzFailureException(string.Join("; ", _failures) + $" (after {after})");
            }
        }
    }

    /// <summary>
    /// The end of every input: every guest destroyed as <c>xl destroy</c> does (no device, server, handle or mapping may
    /// outlive them), then a well-formed device for a new guest, which must be served and reachable, then the stop.
    /// </summary>
    public void Finish()
    {
        foreach (ushort domain in XenstoreVocabulary.Domains)
        {
            BeginOperation(writesMoreThanOnce: true);
            Toolstack.DestroyDomain(domain);
            Settle(FormattableString.Invariant($"destroying domain {domain}"));
        }

        if (Service.Devices.Count != 0)
        {
            throw new FuzzFailureException($"{Service.Devices.Count} device(s) outlived every guest: {string.Join(", ", Service.Devices)}");
        }

        CheckNothingHeld("every guest was destroyed");
        BeginOperation(writesMoreThanOnce: true);
        SimulatedHypervisor last = AddGuest(LastGuest, GuestArchitecture.Arm64);
        (string slot, string irq) = XenstoreVocabulary.MmioSlot(0);
        string path = Toolstack.AddSdkDevice(LastGuest, 0, "virtio-rng", new Dictionary<string, string> { ["transport"] = "mmio", ["base"] = slot, ["irq"] = irq });
        Settle("the well-formed device at the end");
        string? state = _checker.Read(path + "/state");
        if (state != "2")
        {
            throw new FuzzFailureException($"the well-formed device at the end was not served: its state is '{state}'");
        }

        uint magic = (uint)last.Vcpu(0).ReadMmio(VirtioMmioTransport.Arm64WindowBase, 4);
        if (magic != 0x7472_6976)
        {
            throw new FuzzFailureException(FormattableString.Invariant($"the well-formed device at the end is served but its guest reads 0x{magic:x8} at its magic register"));
        }

        Stop();
        CheckNothingHeld("the service stopped");
        if (GC.GetTotalMemory(forceFullCollection: false) > FuzzGuest.MaxHeapBytes && GC.GetTotalMemory(forceFullCollection: true) > FuzzGuest.MaxHeapBytes)
        {
            throw new FuzzFailureException($"the managed heap grew past {FuzzGuest.MaxHeapBytes >> 20} MiB");
        }
    }

    public void Dispose()
    {
        if (!_stopped)
        {
            _ = Service.Stop(SettleTimeout);
        }

        foreach (IXenStore store in _guestStores.Values)
        {
            store.Dispose();
        }

        _checker.Dispose();
        Dom0.Dispose();
        Toolstack.Dispose();
        foreach (SimulatedHypervisor guest in _guests.Values)
        {
            guest.Dispose();
        }
    }

    private SimulatedHypervisor AddGuest(ushort domain, GuestArchitecture architecture)
    {
        var guest = new SimulatedHypervisor(new SimulationOptions { Architecture = architecture, Domain = domain, VcpuCount = 1, RamSize = 1 << 20, ResponseTimeout = FuzzGuest.ResponseTimeout });
        _guests[domain] = guest;
        Hypervisors.Add(guest);
        Toolstack.CreateDomain(domain);
        return guest;
    }

    private void Stop()
    {
        _stopped = true;
        if (!Service.Stop(SettleTimeout))
        {
            throw new FuzzFailureException($"the backend service's stop did not finish within {SettleTimeout.TotalSeconds} s (hang)");
        }

        if (_running.IsFaulted)
        {
            throw new FuzzFailureException("the backend service's run faulted", _running.Exception!.GetBaseException());
        }

        lock (_failures)
        {
            if (_failures.Count > 0)
            {
                throw new FuzzFailureException(string.Join("; ", _failures) + " (at the stop)");
            }
        }
    }

    private void CheckNothingHeld(string when)
    {
        foreach (SimulatedHypervisor guest in _guests.Values)
        {
            int servers = guest.LiveServers();
            int held = Hypervisors.Held(guest.Domain);
            if (servers != 0 || held != 0 || guest.OutstandingGuestMappings != 0)
            {
                throw new FuzzFailureException(FormattableString.Invariant(
                    $"once {when}, domain {guest.Domain} still has {servers} ioreq server(s), {held} handle(s) held, {guest.OutstandingGuestMappings} guest mapping(s)"));
            }

            if (guest.CrashReason is string crash)
            {
                throw new FuzzFailureException($"domain {guest.Domain} was crashed by its device model: {crash}");
            }
        }
    }

    /// <summary>On the service's thread, as it raises the event (the harness waits meanwhile, so xenstore holds still).</summary>
    private void OnServed(BackendDeviceStatus device)
    {
        Trace("served", device);
        string? state = _checker.Read(device.BackendPath + "/state");
        if (_served.ContainsKey(device.BackendPath))
        {
            Fail($"{device.BackendPath} was served again while served");
        }

        if (device.IoreqServer is not ushort server || Guest(device.FrontendDomain)?.HasServer(server) != true)
        {
            Fail($"{device.BackendPath} was reported served without a live ioreq server");
            return;
        }

        if (!_racing && state is not ("2" or "4"))
        {
            Fail($"{device.BackendPath} was reported served but its state is '{state}'");
        }

        foreach (KeyValuePair<string, (ushort Domain, ushort Server)> other in _served)
        {
            if (other.Value == (device.FrontendDomain, server))
            {
                // Two devices on one server id: the other's server was destroyed under it and the id handed out again.
                Fail(FormattableString.Invariant($"{device.BackendPath} was served on ioreq server {server} of domain {device.FrontendDomain}, which {other.Key} is served on"));
            }
        }

        _served[device.BackendPath] = (device.FrontendDomain, server);
        CheckServerCounts(device.BackendPath);
    }

    private void OnClosed(BackendDeviceStatus device)
    {
        Trace("closed", device);
        string? state = _checker.Read(device.BackendPath + "/state");
        if (_served.Remove(device.BackendPath, out (ushort Domain, ushort Server) was) && Guest(was.Domain)?.HasServer(was.Server) == true)
        {
            Fail(FormattableString.Invariant($"{device.BackendPath} was reported closed ({device.Reason}) but its ioreq server {was.Server} still exists"));
        }

        if (!_racing && device.Reason != "the service stopped" && state is not (null or "6"))
        {
            Fail($"{device.BackendPath} was reported closed ({device.Reason}) but its state is '{state}'");
        }

        if (device.Reason is string reason && IsProgramBug(reason))
        {
            Fail($"{device.BackendPath} was refused for a programming error: {reason}");
        }

        CheckServerCounts(device.BackendPath + " (closed: " + device.Reason + ")");
    }

    /// <summary>Each guest has exactly as many ioreq servers as devices reported served for it: none leaked by a refusal or a teardown, none destroyed under a device.</summary>
    private void CheckServerCounts(string after)
    {
        foreach (SimulatedHypervisor guest in _guests.Values)
        {
            int served = 0;
            foreach ((ushort Domain, ushort Server) device in _served.Values)
            {
                served += device.Domain == guest.Domain ? 1 : 0;
            }

            int live = guest.LiveServers();
            if (live != served)
            {
                Fail(FormattableString.Invariant($"after the event for {after}, domain {guest.Domain} has {live} ioreq server(s) for {served} device(s) reported served"));
            }
        }
    }

    /// <summary>With FUZZ_TRACE=1, what the service reported, for reading what an input did.</summary>
    private static void Trace(string what, BackendDeviceStatus device)
    {
        if (s_trace)
        {
            Console.Error.WriteLine($"xenstore: {what} {device.BackendPath}: {device}");
        }
    }

    private static bool IsProgramBug(string reason) =>
        reason.StartsWith("NullReferenceException", StringComparison.Ordinal) || reason.StartsWith("IndexOutOfRangeException", StringComparison.Ordinal)
        || reason.StartsWith("InvalidCastException", StringComparison.Ordinal) || reason.StartsWith("KeyNotFoundException", StringComparison.Ordinal)
        || reason.StartsWith("OverflowException", StringComparison.Ordinal) || reason.StartsWith("DivideByZeroException", StringComparison.Ordinal)
        || reason.StartsWith("ArgumentOutOfRangeException", StringComparison.Ordinal);

    private void Fail(string what)
    {
        lock (_failures)
        {
            _failures.Add(what);
        }
    }

    /// <summary>The service's log, read for the lines that mean it faulted (an event it could not handle, a teardown that threw, a lost connection).</summary>
    private sealed class FaultLog(XenstoreRig rig) : ILoggerFactory, ILogger
    {
        public void AddProvider(ILoggerProvider provider)
        {
        }

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            // 103: the connection closed; 104: an event's handling threw; 106: a handler threw (the harness's oracles never
            // do); 112: a teardown threw. Refusals (110) are the service doing its job.
            if (eventId.Id is 103 or 104 or 106 or 112)
            {
                rig.Fail($"the service logged '{formatter(state, exception)}' {exception}");
            }
        }

        public void Dispose()
        {
        }
    }
}
