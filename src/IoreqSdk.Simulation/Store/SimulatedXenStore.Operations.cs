using System;
using System.Collections.Generic;
using IoreqSdk.Hypervisor;
using IoreqSdk.Xen.Store;
using IoreqSdk.Xenstore;

namespace IoreqSdk.Simulation.Store;

public sealed partial class SimulatedXenStore
{
    private readonly Dictionary<uint, OpenTransaction> _transactions = [];

    internal string? Read(SimulatedXenStoreConnection connection, string path, XenStoreTransaction transaction)
    {
        lock (_gate)
        {
            string absolute = Begin(connection, "read", path);
            return TreeFor(connection, transaction).FindReadable("read", absolute, connection.Domain)?.Value;
        }
    }

    internal IReadOnlyList<string>? List(SimulatedXenStoreConnection connection, string path, XenStoreTransaction transaction)
    {
        lock (_gate)
        {
            string absolute = Begin(connection, "directory", path);
            StoreNode? node = TreeFor(connection, transaction).FindReadable("directory", absolute, connection.Domain);
            return node is null ? null : [.. node.Children.Keys];
        }
    }

    internal IReadOnlyList<XenStorePermissionEntry>? GetPermissions(SimulatedXenStoreConnection connection, string path, XenStoreTransaction transaction)
    {
        lock (_gate)
        {
            string absolute = Begin(connection, "get_perms", path);
            StoreNode? node = TreeFor(connection, transaction).FindReadable("get_perms", absolute, connection.Domain);
            return node is null ? null : (XenStorePermissionEntry[])node.Permissions.Clone();
        }
    }

    internal void Write(SimulatedXenStoreConnection connection, string path, string value, XenStoreTransaction transaction)
    {
        if (value is null)
        {
            throw new ArgumentNullException(nameof(value));
        }

        lock (_gate)
        {
            string absolute = Begin(connection, "write", path);
            if (System.Text.Encoding.UTF8.GetByteCount(value) > XenStorePaths.MaxValueLength)
            {
                throw XenStore.Error("write", path, Errno.EINVAL);
            }

            ushort caller = connection.Domain;
            Apply(connection, transaction, tree => tree.Write(absolute, value, caller));
        }
    }

    internal bool Remove(SimulatedXenStoreConnection connection, string path, XenStoreTransaction transaction)
    {
        lock (_gate)
        {
            string absolute = Begin(connection, "rm", path);
            ushort caller = connection.Domain;
            bool removed = false;
            Apply(connection, transaction, tree => removed = tree.Remove(absolute, caller));
            return removed;
        }
    }

    internal void SetPermissions(SimulatedXenStoreConnection connection, string path, IReadOnlyList<XenStorePermissionEntry> permissions, XenStoreTransaction transaction)
    {
        if (permissions is null || permissions.Count == 0)
        {
            throw new ArgumentException("A permission list names at least the owner.", nameof(permissions));
        }

        lock (_gate)
        {
            string absolute = Begin(connection, "set_perms", path);
            XenStorePermissionEntry[] copy = [.. permissions];
            ushort caller = connection.Domain;
            Apply(connection, transaction, tree => tree.SetPermissions(absolute, copy, caller));
        }
    }

    internal XenStoreTransaction BeginTransaction(SimulatedXenStoreConnection connection)
    {
        lock (_gate)
        {
            ThrowIfReleased(connection, "transaction_start");
            int open = 0;
            foreach (OpenTransaction t in _transactions.Values)
            {
                open += t.Owner == connection ? 1 : 0;
            }

            if (open >= MaxTransactionsPerConnection)
            {
                throw XenStore.Error("transaction_start", null, Errno.ENOSPC);
            }

            var id = new XenStoreTransaction(++_nextTransaction);
            var transaction = new OpenTransaction(connection, new StoreTree(_tree.Root.Clone(), NextGeneration));
            transaction.Snapshot.Accessed = path =>
            {
                // The first look decides: what the node was when the transaction first saw it (absent: -1).
                if (!transaction.Seen.ContainsKey(path))
                {
                    transaction.Seen[path] = transaction.Snapshot.Peek(path)?.Generation ?? -1;
                }
            };
            _transactions.Add(id.Id, transaction);
            return id;
        }
    }

    internal bool EndTransaction(SimulatedXenStoreConnection connection, XenStoreTransaction id, bool abort)
    {
        lock (_gate)
        {
            if (!_transactions.TryGetValue(id.Id, out OpenTransaction? transaction) || transaction.Owner != connection)
            {
                throw XenStore.Error("transaction_end", null, Errno.ENOENT);
            }

            _transactions.Remove(id.Id);
            if (abort)
            {
                return true;
            }

            // A node the transaction looked at changed (or came, or went) since: the commit would be built on a stale
            // read. xenstored refuses it with EAGAIN and the caller starts again.
            foreach (KeyValuePair<string, long> seen in transaction.Seen)
            {
                if ((_tree.Peek(seen.Key)?.Generation ?? -1) != seen.Value)
                {
                    return false;
                }
            }

            foreach (Action<StoreTree> operation in transaction.Operations)
            {
                operation(_tree);
            }

            return true;
        }
    }

    internal void Watch(SimulatedXenStoreConnection connection, string path, string token)
    {
        if (token is null)
        {
            throw new ArgumentNullException(nameof(token));
        }

        lock (_gate)
        {
            ThrowIfReleased(connection, "watch");
            string absolute = path is not null && path.Length > 0 && path[0] == '@' ? path : Check("watch", path!, connection.Domain);
            if (!XenStorePaths.IsValid(absolute))
            {
                throw XenStore.Error("watch", path, Errno.EINVAL);
            }

            foreach (SimulatedXenStoreConnection.WatchEntry existing in connection.Watches)
            {
                if (existing.Path == absolute && existing.Token == token)
                {
                    throw XenStore.Error("watch", path, Errno.EEXIST);
                }
            }

            connection.Watches.Add(new SimulatedXenStoreConnection.WatchEntry(absolute, token, absolute != path));

            // The initial fire: the watcher learns at once to look, so what existed before the watch is never missed.
            connection.Queue.Post(new XenStoreWatchEvent(path!, token));
        }
    }

    internal void Unwatch(SimulatedXenStoreConnection connection, string path, string token)
    {
        lock (_gate)
        {
            string absolute = path is not null && path.Length > 0 && path[0] == '@' ? path : Check("unwatch", path!, connection.Domain);
            int index = connection.Watches.FindIndex(w => w.Path == absolute && w.Token == token);
            if (index < 0)
            {
                throw XenStore.Error("unwatch", path, Errno.ENOENT);
            }

            connection.Watches.RemoveAt(index);
        }
    }

    internal void Close(SimulatedXenStoreConnection connection)
    {
        lock (_gate)
        {
            var mine = new List<uint>();
            foreach (KeyValuePair<uint, OpenTransaction> t in _transactions)
            {
                if (t.Value.Owner == connection)
                {
                    mine.Add(t.Key);
                }
            }

            foreach (uint id in mine)
            {
                _transactions.Remove(id);
            }
        }

        Disconnect(connection);
    }

    private static string Begin(SimulatedXenStoreConnection connection, string operation, string path)
    {
        ThrowIfReleased(connection, operation);
        return Check(operation, path, connection.Domain);
    }

    private StoreTree TreeFor(SimulatedXenStoreConnection connection, XenStoreTransaction transaction)
    {
        if (!transaction.IsTransaction)
        {
            return _tree;
        }

        return _transactions.TryGetValue(transaction.Id, out OpenTransaction? open) && open.Owner == connection
            ? open.Snapshot
            : throw XenStore.Error("transaction", null, Errno.ENOENT);
    }

    /// <summary>Runs a change on the live tree (watches fire) or on the transaction's snapshot, recorded to replay at commit.</summary>
    private void Apply(SimulatedXenStoreConnection connection, XenStoreTransaction transaction, Action<StoreTree> operation)
    {
        StoreTree tree = TreeFor(connection, transaction);
        operation(tree);
        if (transaction.IsTransaction)
        {
            _transactions[transaction.Id].Operations.Add(operation);
        }
    }

    private sealed class OpenTransaction
    {
        public OpenTransaction(SimulatedXenStoreConnection owner, StoreTree snapshot)
        {
            Owner = owner;
            Snapshot = snapshot;
        }

        public SimulatedXenStoreConnection Owner { get; }

        public StoreTree Snapshot { get; }

        public Dictionary<string, long> Seen { get; } = new(StringComparer.Ordinal);

        public List<Action<StoreTree>> Operations { get; } = [];
    }
}
