using System;
using System.Collections.Generic;
using IoreqSdk.Hypervisor;
using IoreqSdk.Xen.Store;
using IoreqSdk.Xenstore;

namespace IoreqSdk.Simulation.Store;

/// <summary>
/// A simulated xenstored: one tree, per-domain connections (<see cref="Connect"/>), and the semantics of Xen's that a
/// backend depends on (docs/misc/xenstore.txt): absolute and domain-relative paths; per-node permissions (an owner,
/// everyone else's access, per-domain entries; dom0 privileged; new nodes inherit, unprivileged creators own); watches
/// that fire once on registration and then on every creation, change or removal of the node or a descendant, only for
/// connections allowed to read the node; <c>@introduceDomain</c> and <c>@releaseDomain</c>; transactions that see a
/// snapshot and fail with EAGAIN when a node they looked at changed underneath.
/// </summary>
public sealed partial class SimulatedXenStore
{
    /// <summary>xenstored's default quota of open transactions per connection.</summary>
    public const int MaxTransactionsPerConnection = 10;

    private readonly object _gate = new();
    private readonly List<SimulatedXenStoreConnection> _connections = [];
    private readonly HashSet<ushort> _domains = [0];
    private readonly StoreTree _tree;
    private long _generation;
    private uint _nextTransaction;

    /// <summary>A store holding the skeleton xenstored and the toolstack start from: <c>/local/domain/0</c>, <c>/tool</c>, owned by dom0.</summary>
    public SimulatedXenStore()
    {
        _tree = new StoreTree(new StoreNode([new XenStorePermissionEntry(0, XenStoreAccess.None)]), NextGeneration);
        AttachWatchRules(_tree, XenStoreTransaction.None);
        _tree.Write("/local/domain/0", string.Empty, 0);
        _tree.Write("/tool", string.Empty, 0);
    }

    /// <summary>The domains introduced and not released (dom0 always).</summary>
    public IReadOnlyCollection<ushort> Domains
    {
        get
        {
            lock (_gate)
            {
                return [.. _domains];
            }
        }
    }

    /// <summary>A connection for <paramref name="domain"/> (dom0's is privileged), with a bounded watch queue.</summary>
    public IXenStore Connect(ushort domain, int watchQueueCapacity = WatchEventQueue.DefaultCapacity)
    {
        var connection = new SimulatedXenStoreConnection(this, domain, watchQueueCapacity);
        lock (_gate)
        {
            _connections.Add(connection);
        }

        return connection;
    }

    /// <summary>What the toolstack does when a domain is built: xenstored learns of it, <c>@introduceDomain</c> fires.</summary>
    public void IntroduceDomain(ushort domain)
    {
        lock (_gate)
        {
            _domains.Add(domain);
            FireSpecial(XenStorePaths.IntroduceDomain);
        }
    }

    /// <summary>What xenstored does when a domain has died: its connections close, <c>@releaseDomain</c> fires.</summary>
    public void ReleaseDomain(ushort domain)
    {
        lock (_gate)
        {
            _domains.Remove(domain);
            foreach (SimulatedXenStoreConnection connection in _connections)
            {
                if (connection.Domain == domain)
                {
                    connection.Queue.Complete();
                }
            }

            FireSpecial(XenStorePaths.ReleaseDomain);
        }
    }

    /// <summary>Whether xenstored knows <paramref name="domain"/> (introduced and not released).</summary>
    public bool IsDomainIntroduced(ushort domain)
    {
        lock (_gate)
        {
            return _domains.Contains(domain);
        }
    }

    internal void Disconnect(SimulatedXenStoreConnection connection)
    {
        lock (_gate)
        {
            _connections.Remove(connection);
            connection.Queue.Complete();
        }
    }

    private long NextGeneration() => ++_generation;

    private void FireSpecial(string special)
    {
        foreach (SimulatedXenStoreConnection connection in _connections)
        {
            foreach (SimulatedXenStoreConnection.WatchEntry watch in connection.Watches)
            {
                if (watch.Path == special)
                {
                    connection.Queue.Post(new XenStoreWatchEvent(special, watch.Token));
                }
            }
        }
    }

    /// <summary>The global tree fires watches as it changes; a transaction's snapshot fires nothing until it commits.</summary>
    private void AttachWatchRules(StoreTree tree, XenStoreTransaction transaction)
    {
        if (transaction.IsTransaction)
        {
            return;
        }

        tree.Changed = (path, permissions) => Fire(path, permissions, exact: false);
        tree.Deleted = (path, permissions) => Fire(path, permissions, exact: true);
    }

    /// <summary>
    /// An event for every watch on <paramref name="path"/> or an ancestor (or, for a deleted descendant, on exactly it),
    /// delivered only to connections that may read the node, as xenstored checks before it queues an event.
    /// </summary>
    private void Fire(string path, XenStorePermissionEntry[] permissions, bool exact)
    {
        foreach (SimulatedXenStoreConnection connection in _connections)
        {
            if ((StoreTree.AccessOf(permissions, connection.Domain) & XenStoreAccess.Read) == 0)
            {
                continue;
            }

            foreach (SimulatedXenStoreConnection.WatchEntry watch in connection.Watches)
            {
                bool matches = exact ? watch.Path == path : XenStorePaths.IsSelfOrDescendant(path, watch.Path);
                if (matches)
                {
                    connection.Queue.Post(new XenStoreWatchEvent(watch.Relative ? ToRelative(path, connection.Domain) : path, watch.Token));
                }
            }
        }
    }

    private static string ToRelative(string path, ushort domain)
    {
        string home = XenStorePaths.DomainPath(domain) + "/";
        return path.StartsWith(home, StringComparison.Ordinal) ? path.Substring(home.Length) : path;
    }

    private static string Check(string operation, string path, ushort domain)
    {
        if (path is null)
        {
            throw new ArgumentNullException(nameof(path));
        }

        string absolute = XenStorePaths.Resolve(path, domain);
        if (!XenStorePaths.IsValid(absolute) || absolute[0] == '@')
        {
            throw XenStore.Error(operation, path, Errno.EINVAL);
        }

        return absolute;
    }

    private static void ThrowIfReleased(SimulatedXenStoreConnection connection, string operation)
    {
        if (connection.IsClosed)
        {
            throw new ObjectDisposedException(nameof(IXenStore), $"{operation}: the connection of domain {connection.Domain} is closed.");
        }
    }
}
