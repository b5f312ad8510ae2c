using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;

namespace IoreqSdk.Xenstore.Backend;

/// <summary>
/// The toolstack's side for devices libxl does not know: writes a device into the SDK's namespace the way libxl writes
/// its own devices (one transaction, the backend directory owned by the backend domain and readable by the guest,
/// <c>state</c> 1), and waits, as libxl does, for the backend to report InitWait. <c>demu describe</c> and the
/// simulated toolstack both use it.
/// </summary>
public static class BackendDeviceDescription
{
    /// <summary>LIBXL_INIT_TIMEOUT: how long libxl waits for a new device's backend to reach InitWait.</summary>
    public static readonly TimeSpan InitTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The backend directory of a device: <c>/local/domain/&lt;backend&gt;/backend/&lt;kind&gt;/&lt;frontend&gt;/&lt;device&gt;</c>.</summary>
    public static string BackendPath(ushort backend, string kind, ushort frontend, uint deviceId) =>
        FormattableString.Invariant($"{XenStorePaths.DomainPath(backend)}/backend/{kind}/{frontend}/{deviceId}");

    /// <summary>
    /// Writes a device of <paramref name="type"/> for <paramref name="frontend"/> into the SDK's namespace with
    /// <paramref name="keys"/> (<c>transport</c>, <c>base</c>, <c>irq</c>, <c>bdf</c>, <c>params</c>, <c>mode</c>, …);
    /// replaces a device already there. Returns the backend directory.
    /// </summary>
    /// <exception cref="XenStoreException">The store refused (not dom0, or xenstored's quota).</exception>
    public static string DescribeSdkDevice(IXenStore store, ushort backend, ushort frontend, uint deviceId, string type, IReadOnlyDictionary<string, string> keys)
    {
        if (store is null || type is null || keys is null)
        {
            throw new ArgumentNullException(store is null ? nameof(store) : type is null ? nameof(type) : nameof(keys));
        }

        string path = BackendPath(backend, XenstoreBackendService.SdkKind, frontend, deviceId);
        var values = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["frontend-id"] = frontend.ToString(CultureInfo.InvariantCulture),
            ["type"] = type,
            ["online"] = "1",
        };
        foreach (KeyValuePair<string, string> key in keys)
        {
            values[key.Key] = key.Value;
        }

        values["state"] = ((int)XenbusState.Initialising).ToString(CultureInfo.InvariantCulture);
        WriteDevice(store, path, [new XenStorePermissionEntry(backend, XenStoreAccess.None), new XenStorePermissionEntry(frontend, XenStoreAccess.Read)], values);
        return path;
    }

    /// <summary>
    /// Writes a device directory as libxl__device_generic_add does: in one transaction (retried while it conflicts), the
    /// old directory removed, the new one created with <paramref name="permissions"/>, then every key.
    /// </summary>
    public static void WriteDevice(IXenStore store, string path, IReadOnlyList<XenStorePermissionEntry> permissions, IReadOnlyDictionary<string, string> values)
    {
        if (store is null || path is null || permissions is null || values is null)
        {
            throw new ArgumentNullException(nameof(store));
        }

        for (int attempt = 0; ; attempt++)
        {
            XenStoreTransaction transaction = store.BeginTransaction();
            try
            {
                _ = store.Remove(path, transaction);
                store.Write(path, string.Empty, transaction);
                store.SetPermissions(path, permissions, transaction);
                foreach (KeyValuePair<string, string> value in values)
                {
                    store.Write(path + "/" + value.Key, value.Value, transaction);
                }
            }
            catch
            {
                _ = store.EndTransaction(transaction, abort: true);
                throw;
            }

            if (store.EndTransaction(transaction))
            {
                return;
            }

            if (attempt == 64)
            {
                throw new XenStoreException($"writing {path} conflicted 64 times in a row");
            }
        }
    }

    /// <summary>
    /// Waits until <paramref name="backendPath"/>'s <c>state</c> is <paramref name="wanted"/> (true) or
    /// <paramref name="timeout"/> completes first (false), as libxl__ev_devstate_wait does. <paramref name="store"/>
    /// must be a connection of the caller's own: the wait consumes its watch events.
    /// </summary>
    public static async Task<bool> WaitForStateAsync(IXenStore store, string backendPath, XenbusState wanted, Task timeout, CancellationToken cancellationToken)
    {
        if (store is null || backendPath is null || timeout is null)
        {
            throw new ArgumentNullException(nameof(store));
        }

        string statePath = backendPath + "/state";
        string token = "wait-state:" + backendPath;
        string wantedText = ((int)wanted).ToString(CultureInfo.InvariantCulture);
        store.Watch(statePath, token);
        try
        {
            while (true)
            {
                if (store.Read(statePath) == wantedText)
                {
                    return true;
                }

                Task<XenStoreWatchEvent> next = store.ReadWatchAsync(cancellationToken);
                if (await Task.WhenAny(next, timeout).ConfigureAwait(false) == timeout)
                {
                    return false;
                }

                _ = await next.ConfigureAwait(false);
            }
        }
        finally
        {
            try
            {
                store.Unwatch(statePath, token);
            }
            catch (Exception e) when (e is XenStoreException or ObjectDisposedException)
            {
                // The connection is closing anyway.
            }
        }
    }
}
