using System;
using System.Collections.Generic;
using IoreqSdk.Hypervisor;
using IoreqSdk.Xen.Store;
using IoreqSdk.Xenstore;

namespace IoreqSdk.Simulation.Store;

/// <summary>One node of the simulated store: a value, a permission list (owner first), children, and a generation.</summary>
internal sealed class StoreNode
{
    public StoreNode(XenStorePermissionEntry[] permissions) => Permissions = permissions;

    public string Value { get; set; } = string.Empty;

    public XenStorePermissionEntry[] Permissions { get; set; }

    public SortedDictionary<string, StoreNode> Children { get; } = new(StringComparer.Ordinal);

    /// <summary>Moves on every change of the value, the permissions or the set of children: what transactions compare.</summary>
    public long Generation { get; set; }

    public StoreNode Clone()
    {
        var copy = new StoreNode(Permissions) { Value = Value, Generation = Generation };
        foreach (KeyValuePair<string, StoreNode> child in Children)
        {
            copy.Children.Add(child.Key, child.Value.Clone());
        }

        return copy;
    }
}

/// <summary>
/// The store's tree and xenstored's rules over it (docs/misc/xenstore.txt, xenstored's permission checks): who may
/// read, write, create and remove, how new nodes inherit permissions. Not thread-safe: the daemon holds its lock.
/// </summary>
internal sealed class StoreTree
{
    private readonly Func<long> _nextGeneration;

    public StoreTree(StoreNode root, Func<long> nextGeneration)
    {
        Root = root;
        _nextGeneration = nextGeneration;
    }

    public StoreNode Root { get; }

    /// <summary>Called with each path an operation looked at (a transaction's conflict set).</summary>
    public Action<string>? Accessed { get; set; }

    /// <summary>Called with each path an operation changed and the permissions it had (for the watch rules).</summary>
    public Action<string, XenStorePermissionEntry[]>? Changed { get; set; }

    /// <summary>Called with each path a removal deleted below the removed node (watches on exactly it fire too).</summary>
    public Action<string, XenStorePermissionEntry[]>? Deleted { get; set; }

    public static XenStoreAccess AccessOf(XenStorePermissionEntry[] permissions, ushort domain)
    {
        // dom0 is privileged; the owner may do anything; then a domain's own entry; else everyone else's access.
        if (domain == 0 || permissions[0].Domain == domain)
        {
            return XenStoreAccess.ReadWrite;
        }

        for (int i = 1; i < permissions.Length; i++)
        {
            if (permissions[i].Domain == domain)
            {
                return permissions[i].Access;
            }
        }

        return permissions[0].Access;
    }

    public StoreNode? Find(string path)
    {
        Accessed?.Invoke(path);
        return Peek(path);
    }

    /// <summary>The node at <paramref name="path"/>, not counted as an access.</summary>
    public StoreNode? Peek(string path)
    {
        if (path == "/")
        {
            return Root;
        }

        StoreNode node = Root;
        foreach (string part in path.Substring(1).Split('/'))
        {
            if (!node.Children.TryGetValue(part, out StoreNode? child))
            {
                return null;
            }

            node = child;
        }

        return node;
    }

    public StoreNode? FindReadable(string operation, string path, ushort caller)
    {
        StoreNode? node = Find(path);
        if (node is not null && (AccessOf(node.Permissions, caller) & XenStoreAccess.Read) == 0)
        {
            throw XenStore.Error(operation, path, Errno.EACCES);
        }

        return node;
    }

    public void Write(string path, string value, ushort caller)
    {
        StoreNode node = Create(path, caller);
        node.Value = value;
        node.Generation = _nextGeneration();
        Changed?.Invoke(path, node.Permissions);
    }

    public bool Remove(string path, ushort caller)
    {
        if (path == "/")
        {
            throw XenStore.Error("rm", path, Errno.EINVAL);
        }

        StoreNode? node = Find(path);
        if (node is null)
        {
            return false;
        }

        RequireWrite("rm", path, node, caller);
        string parentPath = XenStorePaths.Parent(path);
        StoreNode parent = Find(parentPath)!;
        parent.Children.Remove(path.Substring(path.LastIndexOf('/') + 1));
        parent.Generation = _nextGeneration();
        Changed?.Invoke(path, node.Permissions);
        ReportDeleted(path, node);
        return true;
    }

    public void SetPermissions(string path, XenStorePermissionEntry[] permissions, ushort caller)
    {
        StoreNode? node = Find(path) ?? throw XenStore.Error("set_perms", path, Errno.ENOENT);

        // Changing permissions is the owner's (or dom0's) right, not every writer's (xenstored's XS_PERM_OWNER check).
        if (caller != 0 && node.Permissions[0].Domain != caller)
        {
            throw XenStore.Error("set_perms", path, Errno.EACCES);
        }

        XenStorePermissionEntry[] before = node.Permissions;
        node.Permissions = permissions;
        node.Generation = _nextGeneration();
        Changed?.Invoke(path, before);
    }

    /// <summary>The node, created with any missing parents: each new node inherits its parent's permissions, and what an unprivileged domain creates it owns.</summary>
    private StoreNode Create(string path, ushort caller)
    {
        StoreNode node = Root;
        string at = string.Empty;
        if (path == "/")
        {
            RequireWrite("write", path, node, caller);
            return node;
        }

        string[] parts = path.Substring(1).Split('/');
        for (int i = 0; i < parts.Length; i++)
        {
            string parentPath = at.Length == 0 ? "/" : at;
            at += "/" + parts[i];
            Accessed?.Invoke(at);
            if (node.Children.TryGetValue(parts[i], out StoreNode? child))
            {
                node = child;
                continue;
            }

            RequireWrite("write", parentPath, node, caller);
            XenStorePermissionEntry[] inherited = (XenStorePermissionEntry[])node.Permissions.Clone();
            if (caller != 0)
            {
                inherited[0] = new XenStorePermissionEntry(caller, inherited[0].Access);
            }

            child = new StoreNode(inherited) { Generation = _nextGeneration() };
            node.Children.Add(parts[i], child);
            node.Generation = child.Generation;
            node = child;
        }

        RequireWrite("write", path, node, caller);
        return node;
    }

    private static void RequireWrite(string operation, string path, StoreNode node, ushort caller)
    {
        if ((AccessOf(node.Permissions, caller) & XenStoreAccess.Write) == 0)
        {
            throw XenStore.Error(operation, path, Errno.EACCES);
        }
    }

    private void ReportDeleted(string path, StoreNode node)
    {
        foreach (KeyValuePair<string, StoreNode> child in node.Children)
        {
            string childPath = XenStorePaths.Combine(path, child.Key);
            Deleted?.Invoke(childPath, child.Value.Permissions);
            ReportDeleted(childPath, child.Value);
        }
    }
}
