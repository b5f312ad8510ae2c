using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Xenstore.Backend;

public sealed partial class XenstoreBackendService
{
    private const string EndedTokenPrefix = "ended:";

    private long _serial;

    /// <summary>DOMID_FIRST_RESERVED (xen.h): ids from here on are not guests.</summary>
    private const ushort FirstReservedDomain = 0x7FF0;

    /// <summary>The key under which the service records a device's ioreq server, so a restarted backend can destroy a stale one.</summary>
    public const string IoreqServerKey = "ioreq-server";

    /// <summary>A device node changed (or a scan found it): serve it, check it, or leave it.</summary>
    private void Consider(string kind, string frontendName, string deviceName)
    {
        string key = kind + "/" + frontendName + "/" + deviceName;
        string path = DirectoryOf(kind) + "/" + frontendName + "/" + deviceName;
        if (_served.TryGetValue(key, out ServedDevice? served))
        {
            Check(served);
            return;
        }

        if (!ushort.TryParse(frontendName, NumberStyles.None, CultureInfo.InvariantCulture, out ushort frontend) || frontend >= FirstReservedDomain
            || !uint.TryParse(deviceName, NumberStyles.None, CultureInfo.InvariantCulture, out uint deviceId))
        {
            BackendLog.MalformedPath(_logger, path);
            return;
        }

        string? stateText = _store.Read(path + "/state");
        if (stateText is null)
        {
            // Not there (removed before it was served) or not complete yet: libxl writes every key with state in one
            // transaction, so a device is considered once its state exists.
            return;
        }

        if (!BackendDeviceRequest.TryParseNumber(stateText, out ulong state) || state > (ulong)XenbusState.Reconfigured)
        {
            Refuse(kind, frontend, deviceId, path, null, $"its state '{BackendDeviceRequest.Shorten(stateText)}' is not a xenbus state");
            return;
        }

        // 1 is new; 2 to 4 is a device a previous run of the backend served (a restart picks it up); 5 and 6 are ending or over.
        if (state is >= (ulong)XenbusState.Initialising and <= (ulong)XenbusState.Connected)
        {
            Attach(kind, frontendName, frontend, deviceId, key, path, (XenbusState)state);
        }
    }

    /// <summary>Whether a served device should end: its node, the toolstack's state or online flag, its frontend.</summary>
    private void Check(ServedDevice device)
    {
        string? state = _store.Read(device.Path + "/state");
        if (state is null)
        {
            TearDown(device, closeState: false, "its backend node was removed");
            return;
        }

        if (state == Number(XenbusState.Closing) || state == Number(XenbusState.Closed) || _store.Read(device.Path + "/online") == "0")
        {
            TearDown(device, closeState: true, "the toolstack is removing it (state Closing or online 0)");
            return;
        }

        if (device.FrontendPath is null)
        {
            return;
        }

        string? frontendState = _store.Read(device.FrontendPath + "/state");
        if (frontendState is null)
        {
            if (device.FrontendSeen)
            {
                TearDown(device, closeState: true, "its frontend node was removed");
            }

            return;
        }

        device.FrontendSeen = true;
        if (frontendState == Number(XenbusState.Closing) || frontendState == Number(XenbusState.Closed))
        {
            TearDown(device, closeState: true, "its frontend closed");
        }
        else if ((frontendState == Number(XenbusState.Initialised) || frontendState == Number(XenbusState.Connected)) && device.State == XenbusState.InitWait)
        {
            if (WriteStateIfPresent(device.Path, XenbusState.Connected))
            {
                device.State = XenbusState.Connected;
                BackendLog.FrontendConnected(_logger, device.Frontend, device.DeviceId);
                PublishStatus();
            }
        }
    }

    private void Attach(string kind, string frontendName, ushort frontend, uint deviceId, string key, string path, XenbusState found)
    {
        string? type = kind == VirtioDiskKind ? VirtioDiskKind : null;
        IHypervisor? hypervisor = null;
        IoreqServer? server = null;
        IDisposable? resources = null;
        ILogger logger = _logger;
        ServedDevice? added = null;
        using IDisposable? logScope = BackendLog.DeviceScope(logger, frontend, deviceId, kind);

        try
        {
            if (_served.Count >= _options.MaxDevices)
            {
                throw new BackendDeviceException(FormattableString.Invariant($"the service already serves its maximum of {_options.MaxDevices} devices"));
            }

            Dictionary<string, string> keys = ReadKeys(path);
            type ??= keys.TryGetValue("type", out string? named) && named.Length > 0 ? named : throw new BackendDeviceException("the key 'type' is missing");
            string frontendId = keys.TryGetValue("frontend-id", out string? id) ? id : throw new BackendDeviceException("the key 'frontend-id' is missing");
            if (frontendId != frontendName)
            {
                throw new BackendDeviceException($"frontend-id '{BackendDeviceRequest.Shorten(frontendId)}' does not match the directory's domain {frontendName}");
            }

            if (_store.List(XenStorePaths.DomainPath(frontend)) is null)
            {
                throw new BackendDeviceException(FormattableString.Invariant($"frontend domain {frontend} does not exist (no {XenStorePaths.DomainPath(frontend)})"));
            }

            IBackendDeviceFactory factory = FindFactory(type) ?? throw new BackendDeviceException($"no device type '{BackendDeviceRequest.Shorten(type)}' is known (known: {KnownTypes()})");
            hypervisor = _hypervisors.Acquire(frontend);
            if (found != XenbusState.Initialising)
            {
                // Only a device a previous backend served (state 2 to 4) can have left a server; a new device's
                // directory was written afresh by the toolstack, and its key, if any, names no server of ours.
                DestroyStaleServer(hypervisor, frontend, keys, logger);
            }
            server = new IoreqServer(hypervisor, new IoreqServerOptions
            {
                Domain = frontend,
                LoggerFactory = _options.LoggerFactory,
                RestrictHandlesToDomain = _options.RestrictHandlesToDomain,
                LoopThreads = _loopThreads,
            });
            int vcpus = hypervisor.GetVcpuCount(frontend);
            resources = factory.Create(new BackendDeviceRequest(type, frontend, deviceId, path, keys, server, hypervisor.Architecture, vcpus, logger));
            var stop = new CancellationTokenSource();
            Task run = server.RunAsync(stop.Token);
            if (run.IsFaulted)
            {
                stop.Dispose();
                run.GetAwaiter().GetResult();
            }

            XenbusState state = found == XenbusState.Connected ? XenbusState.Connected : XenbusState.InitWait;
            var device = new ServedDevice(key, kind, frontendName, frontend, deviceId, type, path, hypervisor, server, resources, stop, ++_serial)
            {
                State = state,
                Loops = Math.Min(_loopThreads, vcpus),
                FrontendPath = keys.TryGetValue("frontend", out string? frontendPath) && IsFrontendPath(frontendPath) ? frontendPath : null,
            };
            _served.Add(key, device);
            added = device;
            (hypervisor, server, resources) = (null, null, null);

            // Listed before its state says so in xenstore: whoever sees InitWait and asks for Devices finds it.
            PublishStatus();

            // The server's id and the state together, and only while the node exists: a plain write of the id would
            // re-create a node the toolstack removed meanwhile, and the teardown would leave it behind, empty.
            if (!WriteStateIfPresent(path, state, Invariant(device.Server.Id)))
            {
                TearDown(device, closeState: false, "its backend node was removed while it was being served");
                return;
            }

            if (device.FrontendPath is not null)
            {
                device.FrontendSeen = _store.Read(device.FrontendPath + "/state") is not null;
                _store.Watch(device.FrontendPath, FrontendTokenPrefix + key);
            }

            // The server stopping by itself (its guest destroyed, a fatal device fault) ends the device, on the service's loop.
            string ended = EndedTokenPrefix + Invariant((ulong)device.Serial) + ":" + key;
            _ = run.ContinueWith(_ => _ended.Post(new XenStoreWatchEvent(path, ended)), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            BackendLog.Serving(logger, frontend, deviceId, type, device.Server.Id, state);
            Raise(DeviceServed, device.Status(null));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever this device's keys or build did, only this device is refused: the service and the others go on.
            string reason = e is BackendDeviceException ? e.Message : e.GetType().Name + ": " + e.Message;
            if (added is not null)
            {
                // Already in the table with its server running: a refusal would leave it so, Closed in xenstore yet
                // served. It ends as any served device does.
                TearDown(added, closeState: true, "serving it failed: " + reason);
                return;
            }

            server?.Dispose();
            resources?.Dispose();
            if (hypervisor is not null)
            {
                _hypervisors.Release(frontend, hypervisor);
            }

            Refuse(kind, frontend, deviceId, path, type, reason);
        }
    }

    private void Refuse(string kind, ushort frontend, uint deviceId, string path, string? type, string reason)
    {
        bool closed = WriteStateIfPresent(path, XenbusState.Closed);
        BackendLog.Refused(_logger, frontend, deviceId, kind, reason, closed ? "Closed" : "not written (node gone)");
        Raise(DeviceClosed, new BackendDeviceStatus(kind, frontend, deviceId, path, type, XenbusState.Closed, null, reason));
    }

    private void TearDown(ServedDevice device, bool closeState, string reason)
    {
        _served.Remove(device.Key);
        device.Stop.Cancel();

        // Join the device's loop (from the service's thread, never a loop's), then release what the device holds.
        device.Server.Dispose();
        device.Resources?.Dispose();
        device.Stop.Dispose();
        _hypervisors.Release(device.Frontend, device.Hypervisor);

        // Logged once everything is released (a throwing logger must not leak the device's image or handles).
        IoreqServerStatistics served = device.Server.Statistics;
        BackendLog.Served(_logger, device.Frontend, device.DeviceId, served.MmioRequests + served.PioRequests + served.PciConfigRequests + served.InvalidateRequests, device.Loops, served.HandedOffRequests);

        // Its server is destroyed: the record would name whatever server Xen gives that id next (another device's, or
        // another process's), which a restarted backend would then destroy as stale. Removing a key never re-creates a
        // node the toolstack removed.
        try
        {
            _ = _store.Remove(device.Path + "/" + IoreqServerKey);
        }
        catch (XenStoreException)
        {
            // The node is going away under the toolstack, or the connection closed: nothing left to name a server.
        }

        if (device.FrontendPath is not null)
        {
            try
            {
                _store.Unwatch(device.FrontendPath, FrontendTokenPrefix + device.Key);
            }
            catch (XenStoreException)
            {
                // Already gone with the connection or never registered: nothing to undo.
            }
        }

        bool closed = closeState && WriteStateIfPresent(device.Path, XenbusState.Closed);
        BackendLog.Closed(_logger, device.Frontend, device.DeviceId, device.Type, reason, closed ? "Closed" : "left as it was");
        PublishStatus();
        Raise(DeviceClosed, device.Status(reason));
    }

    private void TearDownAll()
    {
        foreach (ServedDevice device in Snapshot())
        {
            try
            {
                // A stop leaves xenstore as it is: a restarted backend serves these devices again.
                TearDown(device, closeState: false, "the service stopped");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                BackendLog.TeardownFailed(_logger, device.Path, e);
            }
        }
    }

    /// <summary>
    /// Writes <c>state</c> (and, when given, the ioreq server's id) only where the device node still exists, in one
    /// transaction: a write would otherwise re-create a node the toolstack removed.
    /// </summary>
    private bool WriteStateIfPresent(string path, XenbusState state, string? ioreqServer = null)
    {
        for (int attempt = 0; attempt < 16; attempt++)
        {
            XenStoreTransaction transaction = _store.BeginTransaction();
            if (_store.Read(path + "/state", transaction) is null)
            {
                _ = _store.EndTransaction(transaction, abort: true);
                return false;
            }

            if (ioreqServer is not null)
            {
                _store.Write(path + "/" + IoreqServerKey, ioreqServer, transaction);
            }

            _store.Write(path + "/state", Number(state), transaction);
            if (_store.EndTransaction(transaction))
            {
                return true;
            }
        }

        BackendLog.StateWriteGaveUp(_logger, state, path);
        return false;
    }

    private Dictionary<string, string> ReadKeys(string path)
    {
        IReadOnlyList<string> names = _store.List(path) ?? throw new BackendDeviceException("its backend node disappeared");
        if (names.Count > _options.MaxKeysPerDevice)
        {
            throw new BackendDeviceException(FormattableString.Invariant($"its directory has {names.Count} keys, more than the {_options.MaxKeysPerDevice} accepted"));
        }

        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string name in names)
        {
            if (_store.Read(path + "/" + name) is string value)
            {
                keys[name] = value;
            }
        }

        return keys;
    }

    private void DestroyStaleServer(IHypervisor hypervisor, ushort frontend, Dictionary<string, string> keys, ILogger logger)
    {
        // A backend that died without its teardown left its ioreq server enabled and claiming the device's range (Xen keeps
        // a domain's servers until the domain dies): destroy it before serving the device again. ENOENT (already gone) is
        // the usual answer after a clean stop. Xen reuses a freed id for the next server of the domain, so an id that one
        // of this service's own servers holds now is not stale: its old server is gone, and destroying it would end a
        // device this service serves.
        if (keys.TryGetValue(IoreqServerKey, out string? text) && ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ushort stale)
            && !ServesOn(frontend, stale))
        {
            // (ServesOn: found both by the restart tests and by the xenstore fuzz target, which merged the same check.)
            try
            {
                hypervisor.DestroyIoreqServer(frontend, stale);
                BackendLog.StaleServerDestroyed(logger, frontend, stale);
            }
            catch (HypervisorException)
            {
                // Not there any more: nothing to clean.
            }
        }
    }

    private bool ServesOn(ushort frontend, ushort server)
    {
        foreach (ServedDevice device in _served.Values)
        {
            if (device.Frontend == frontend && device.Server.Id == server)
            {
                return true;
            }
        }

        return false;
    }

    private IBackendDeviceFactory? FindFactory(string type)
    {
        foreach (IBackendDeviceFactory factory in _options.Factories)
        {
            if (factory.Type == type)
            {
                return factory;
            }
        }

        return null;
    }

    private string KnownTypes()
    {
        var names = new List<string>();
        foreach (IBackendDeviceFactory factory in _options.Factories)
        {
            names.Add(factory.Type);
        }

        return names.Count == 0 ? "none" : string.Join(", ", names);
    }

    /// <summary>
    /// Whether a <c>frontend</c> key names a node whose <c>state</c> can be read and watched: a valid path is not enough —
    /// the root ("//state"), a special watch (<c>@releaseDomain</c>) or a path with no room left for "/state" is
    /// malformed once the key is appended, and each read would fail (found by the xenstore fuzz target).
    /// </summary>
    private static bool IsFrontendPath(string path) => XenStorePaths.IsValid(path) && XenStorePaths.IsValid(path + "/state");

    private static string Number(XenbusState state) => ((int)state).ToString(CultureInfo.InvariantCulture);
}
