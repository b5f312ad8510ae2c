using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Server;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace IoreqSdk.Xenstore.Backend;

/// <summary>
/// Serves the devices the toolstack describes in xenstore, as a backend daemon does: it watches
/// <c>/local/domain/&lt;backend&gt;/backend/virtio_disk/</c> (libxl's virtio disks) and the SDK's own
/// <c>…/backend/ioreq-sdk/</c> (devices libxl does not know, with a <c>type</c> key), and for each new device validates
/// its keys, creates an ioreq server for the frontend domain, builds the device on it, starts it and moves the backend
/// <c>state</c> from 1 (Initialising) to 2 (InitWait), which is what libxl waits up to 10 s for before it lets the
/// domain run. A virtio frontend has no xenbus driver and never moves its own state, so a virtio device stays in
/// InitWait while served (as EPAM's virtio-disk does: libxl expects InitWait at creation); a device whose frontend does
/// move (3 or 4) is moved to 4 (Connected). On the device's end (the frontend at 5 or 6, the toolstack writing Closing
/// or <c>online</c> 0, the backend node removed, the domain released, the server stopping by itself) it tears the
/// device down and writes 6 (Closed) where the node still exists.
/// </summary>
/// <remarks>
/// Each device has its own ioreq server, hypervisor handles and event loop: a fault in one (a bad key, a guest that
/// crashes its device, a server that stops) closes that device only. The service's own work runs on the caller's
/// <see cref="RunAsync"/>, never on an ioreq loop. A stop (<see cref="Dispose"/> from any thread, or the token) tears
/// every device down and leaves their xenstore state as it was, so a restarted backend picks them up again from the
/// initial watch fire.
/// </remarks>
public sealed partial class XenstoreBackendService : IDisposable
{
    /// <summary>libxl's backend directory kind for <c>disk = [ '…, backendtype=standalone, specification=virtio' ]</c>.</summary>
    public const string VirtioDiskKind = "virtio_disk";

    /// <summary>The SDK's own backend directory kind, for devices libxl does not know (the <c>type</c> key names the device).</summary>
    public const string SdkKind = "ioreq-sdk";

    private const string ReleaseToken = "release";
    private const string KindTokenPrefix = "kind:";
    private const string FrontendTokenPrefix = "frontend:";

    private readonly IXenStore _store;
    private readonly IBackendHypervisors _hypervisors;
    private readonly XenstoreBackendOptions _options;
    private readonly int _loopThreads;
    private readonly ILogger _logger;
    private readonly Dictionary<string, ServedDevice> _served = new(StringComparer.Ordinal);
    private readonly WatchEventQueue _ended = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly object _statusGate = new();
    private readonly TaskCompletionSource<bool> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _home;
    private BackendDeviceStatus[] _status = [];
    private int _started;

    /// <summary>A service over <paramref name="store"/> (a dom0 or driver-domain connection) with hypervisor access from <paramref name="hypervisors"/>.</summary>
    public XenstoreBackendService(IXenStore store, IBackendHypervisors hypervisors, XenstoreBackendOptions options)
    {
        _store = store ?? throw new ArgumentNullException(nameof(store));
        _hypervisors = hypervisors ?? throw new ArgumentNullException(nameof(hypervisors));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.LoopThreads < 1 || options.LoopThreads > IoreqServerOptions.MaxLoopThreads)
        {
            // Checked here, not at the first device: a bad setting would otherwise refuse every device one by one.
            ThrowHelper.ThrowArgumentOutOfRange(nameof(options), $"{nameof(XenstoreBackendOptions.LoopThreads)}: a device's server runs 1 to {IoreqServerOptions.MaxLoopThreads} loop threads, not {options.LoopThreads}.");
        }

        // Kept: the options stay the caller's object, and a later change must not get past the check.
        _loopThreads = options.LoopThreads;

        _logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("IoreqSdk.Xenstore.Backend");
        _home = XenStorePaths.DomainPath(options.BackendDomain);
    }

    /// <summary>A device was served (its state is InitWait).</summary>
    public event EventHandler<BackendDeviceEventArgs>? DeviceServed;

    /// <summary>A device was closed or refused (its state is Closed, or its node is gone).</summary>
    public event EventHandler<BackendDeviceEventArgs>? DeviceClosed;

    /// <summary>The devices served now.</summary>
    public IReadOnlyList<BackendDeviceStatus> Devices
    {
        get
        {
            lock (_statusGate)
            {
                return _status;
            }
        }
    }

    /// <summary>The backend directory of <paramref name="kind"/> this service watches.</summary>
    public string DirectoryOf(string kind) => _home + "/backend/" + kind;

    /// <summary>
    /// Watches and serves until <paramref name="cancellationToken"/> or <see cref="Dispose"/> stops it, or the xenstore
    /// connection closes; then tears every device down. Call once.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The service runs once.");
        }

        using CancellationTokenSource stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        try
        {
            _store.Watch(DirectoryOf(VirtioDiskKind), KindTokenPrefix + VirtioDiskKind);
            _store.Watch(DirectoryOf(SdkKind), KindTokenPrefix + SdkKind);
            _store.Watch(XenStorePaths.ReleaseDomain, ReleaseToken);
            BackendLog.Watching(_logger, DirectoryOf(VirtioDiskKind), DirectoryOf(SdkKind), _options.BackendDomain);
            await ServeAsync(stop.Token).ConfigureAwait(false);
        }
        finally
        {
            TearDownAll();
            _finished.TrySetResult(true);
        }
    }

    /// <summary>Stops the service from any thread and waits (bounded by <paramref name="timeout"/>) for every device to be torn down.</summary>
    /// <returns>Whether the teardown finished in time (or the service never ran).</returns>
    public bool Stop(TimeSpan timeout)
    {
        _stop.Cancel();
        return Volatile.Read(ref _started) == 0 || _finished.Task.Wait(timeout);
    }

    /// <summary>Stops the service and waits for its teardown (up to 30 s).</summary>
    public void Dispose()
    {
        _ = Stop(TimeSpan.FromSeconds(30));
        _stop.Dispose();
    }

    private async Task ServeAsync(CancellationToken stop)
    {
        Task<XenStoreWatchEvent> fromStore = _store.ReadWatchAsync(stop);
        Task<XenStoreWatchEvent> ended = _ended.ReadAsync(stop);
        while (true)
        {
            Task<XenStoreWatchEvent> next = await Task.WhenAny(fromStore, ended).ConfigureAwait(false);
            XenStoreWatchEvent watchEvent;
            try
            {
                watchEvent = await next.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                BackendLog.Stopping(_logger, _served.Count);
                return;
            }
            catch (ObjectDisposedException)
            {
                BackendLog.ConnectionClosed(_logger);
                return;
            }

            if (next == fromStore)
            {
                fromStore = _store.ReadWatchAsync(stop);
            }
            else
            {
                ended = _ended.ReadAsync(stop);
            }

            try
            {
                Handle(watchEvent);
            }
            catch (XenStoreException e)
            {
                // A xenstore failure outside any one device (a rescan that was refused): reported, the service goes on.
                BackendLog.HandlingFailed(_logger, watchEvent.ToString(), e);
            }
        }
    }

    private void Handle(XenStoreWatchEvent watchEvent)
    {
        if (watchEvent.IsOverflow)
        {
            BackendLog.EventsLost(_logger);
            ScanKind(VirtioDiskKind);
            ScanKind(SdkKind);
            CheckDomains();
            return;
        }

        string token = watchEvent.Token;
        if (token == ReleaseToken)
        {
            CheckDomains();
        }
        else if (token.StartsWith(KindTokenPrefix, StringComparison.Ordinal))
        {
            string kind = token.Substring(KindTokenPrefix.Length);
            string root = DirectoryOf(kind);
            string[] parts = watchEvent.Path.Length > root.Length + 1 && XenStorePaths.IsSelfOrDescendant(watchEvent.Path, root)
                ? watchEvent.Path.Substring(root.Length + 1).Split('/')
                : [];
            if (parts.Length == 0)
            {
                ScanKind(kind);
            }
            else if (parts.Length == 1)
            {
                ScanFrontend(kind, parts[0]);
            }
            else
            {
                Consider(kind, parts[0], parts[1]);
            }
        }
        else if (token.StartsWith(FrontendTokenPrefix, StringComparison.Ordinal))
        {
            if (_served.TryGetValue(token.Substring(FrontendTokenPrefix.Length), out ServedDevice? device))
            {
                Check(device);
            }
        }
        else if (token.StartsWith(EndedTokenPrefix, StringComparison.Ordinal))
        {
            // ended:<serial>:<key>: only the device that ended, not a later one served under the same path.
            int colon = token.IndexOf(':', EndedTokenPrefix.Length);
            string serial = token.Substring(EndedTokenPrefix.Length, colon - EndedTokenPrefix.Length);
            if (_served.TryGetValue(token.Substring(colon + 1), out ServedDevice? device) && Invariant((ulong)device.Serial) == serial)
            {
                TearDown(device, closeState: true, "its ioreq server stopped (the guest is gone or the device failed)");
            }
        }
    }

    private void ScanKind(string kind)
    {
        IReadOnlyList<string>? frontends = _store.List(DirectoryOf(kind));
        foreach (string frontend in frontends ?? [])
        {
            ScanFrontend(kind, frontend);
        }

        // Devices whose frontend directory vanished with the whole kind directory.
        foreach (ServedDevice device in Snapshot())
        {
            if (device.Kind == kind)
            {
                Check(device);
            }
        }
    }

    private void ScanFrontend(string kind, string frontend)
    {
        IReadOnlyList<string>? devices = _store.List(DirectoryOf(kind) + "/" + frontend);
        foreach (string device in devices ?? [])
        {
            Consider(kind, frontend, device);
        }

        foreach (ServedDevice served in Snapshot())
        {
            if (served.Kind == kind && served.FrontendName == frontend)
            {
                Check(served);
            }
        }
    }

    /// <summary>On <c>@releaseDomain</c>: every device whose guest's xenstore home is gone has lost its guest.</summary>
    private void CheckDomains()
    {
        foreach (ServedDevice device in Snapshot())
        {
            if (_store.List(XenStorePaths.DomainPath(device.Frontend)) is null)
            {
                TearDown(device, closeState: true, FormattableString.Invariant($"domain {device.Frontend} was released"));
            }
        }
    }

    private List<ServedDevice> Snapshot() => [.. _served.Values];

    private void PublishStatus()
    {
        var status = new List<BackendDeviceStatus>(_served.Count);
        foreach (ServedDevice device in _served.Values)
        {
            status.Add(device.Status(null));
        }

        lock (_statusGate)
        {
            _status = [.. status];
        }
    }

    private void Raise(EventHandler<BackendDeviceEventArgs>? handler, BackendDeviceStatus status)
    {
        try
        {
            handler?.Invoke(this, new BackendDeviceEventArgs(status));
        }
        catch (Exception e)
        {
            // A subscriber's fault is contained: the service and the other devices go on.
            BackendLog.HandlerFailed(_logger, e);
        }
    }

    private static string Invariant(ulong value) => value.ToString(CultureInfo.InvariantCulture);
}
