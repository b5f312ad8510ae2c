using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Xenstore;

namespace IoreqSdk.Simulation.Store;

/// <summary>One domain's connection to a <see cref="SimulatedXenStore"/>: its watches, its transactions, its bounded event queue.</summary>
internal sealed class SimulatedXenStoreConnection : IXenStore
{
    private readonly SimulatedXenStore _store;
    private int _closed;

    public SimulatedXenStoreConnection(SimulatedXenStore store, ushort domain, int watchQueueCapacity)
    {
        _store = store;
        Domain = domain;
        Queue = new WatchEventQueue(watchQueueCapacity);
    }

    public ushort Domain { get; }

    public WatchEventQueue Queue { get; }

    /// <summary>Guarded by the store's lock.</summary>
    public List<WatchEntry> Watches { get; } = [];

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    public string? Read(string path, XenStoreTransaction transaction = default) => _store.Read(this, path, transaction);

    public void Write(string path, string value, XenStoreTransaction transaction = default) => _store.Write(this, path, value, transaction);

    public bool Remove(string path, XenStoreTransaction transaction = default) => _store.Remove(this, path, transaction);

    public IReadOnlyList<string>? List(string path, XenStoreTransaction transaction = default) => _store.List(this, path, transaction);

    public IReadOnlyList<XenStorePermissionEntry>? GetPermissions(string path, XenStoreTransaction transaction = default) => _store.GetPermissions(this, path, transaction);

    public void SetPermissions(string path, IReadOnlyList<XenStorePermissionEntry> permissions, XenStoreTransaction transaction = default) =>
        _store.SetPermissions(this, path, permissions, transaction);

    public XenStoreTransaction BeginTransaction() => _store.BeginTransaction(this);

    public bool EndTransaction(XenStoreTransaction transaction, bool abort = false) => _store.EndTransaction(this, transaction, abort);

    public void Watch(string path, string token) => _store.Watch(this, path, token);

    public void Unwatch(string path, string token) => _store.Unwatch(this, path, token);

    public Task<XenStoreWatchEvent> ReadWatchAsync(CancellationToken cancellationToken) => Queue.ReadAsync(cancellationToken);

    public string GetDomainPath(ushort domain) => XenStorePaths.DomainPath(domain);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            _store.Close(this);
        }
    }

    /// <summary>A registered watch: the absolute path, the token, whether it was registered relative (its events are then relative too).</summary>
    public sealed record WatchEntry(string Path, string Token, bool Relative);
}
