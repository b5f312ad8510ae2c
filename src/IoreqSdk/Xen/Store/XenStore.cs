using System;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;
using IoreqSdk.Xenstore;

namespace IoreqSdk.Xen.Store;

/// <summary>
/// xenstore on real Xen, through libxenstore (libxenstore.so.4): the calls of <see cref="IXenStore"/>, each result
/// libxenstore malloc'd copied and freed at once with libc's free, as xenstore.h documents. Watch events are read off
/// the caller's threads: a thread of this connection polls libxenstore's watch descriptor and moves each event into a
/// bounded queue, so no ioreq loop ever blocks on xenstore.
/// </summary>
public sealed partial class XenStore : IXenStore
{
    private readonly SafeXenStoreHandle _handle;

    private XenStore(SafeXenStoreHandle handle)
    {
        _handle = handle;
        _watches = new WatchEventQueue();
    }

    /// <summary>Connects to xenstored (its socket in dom0, else /dev/xen/xenbus).</summary>
    /// <exception cref="PlatformNotSupportedException">libxenstore is not installed.</exception>
    /// <exception cref="XenStoreException">xenstored cannot be reached (not a Xen host, or not privileged).</exception>
    public static XenStore Open()
    {
        if (XenLibraries.FindMissing([Interop.Libraries.XenStore]) is string missing)
        {
            throw new PlatformNotSupportedException($"{missing} cannot be loaded: install libxenstore (Debian and Ubuntu: apt-get install libxenstore4; other distributions: the xen-libs package).");
        }

        nint native = Interop.XenStore.Open(0);
        if (native == 0)
        {
            throw Error("xs_open", null, Marshal.GetLastWin32Error());
        }

        var store = new XenStore(SafeXenHandle.Adopt<SafeXenStoreHandle>(native));
        store.StartWatchThread();
        return store;
    }

    /// <summary>As <see cref="Open"/>, with the reason instead of an exception.</summary>
    public static bool TryOpen([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out XenStore? store, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? reason)
    {
        try
        {
            store = Open();
            reason = null;
            return true;
        }
        catch (Exception e) when (e is PlatformNotSupportedException or HypervisorException)
        {
            store = null;
            reason = e.Message;
            return false;
        }
    }

    /// <inheritdoc/>
    public unsafe string? Read(string path, XenStoreTransaction transaction = default)
    {
        byte[] name = Terminated(path);
        using var lease = new HandleLease(_handle);
        uint length;
        nint value;
        fixed (byte* p = name)
        {
            value = Interop.XenStore.Read(lease.Value, transaction.Id, p, &length);
        }

        if (value == 0)
        {
            int errno = Marshal.GetLastWin32Error();
            return errno == Errno.ENOENT ? null : throw Error("xs_read", path, errno);
        }

        try
        {
            return Encoding.UTF8.GetString((byte*)value, (int)length);
        }
        finally
        {
            Interop.Libc.Free((void*)value);
        }
    }

    /// <inheritdoc/>
    public unsafe void Write(string path, string value, XenStoreTransaction transaction = default)
    {
        byte[] name = Terminated(path);
        byte[] data = Encoding.UTF8.GetBytes(value);
        if (data.Length > XenStorePaths.MaxValueLength)
        {
            throw Error("xs_write", path, Errno.EINVAL);
        }

        using var lease = new HandleLease(_handle);
        byte ok;
        fixed (byte* p = name)
        fixed (byte* d = data)
        {
            ok = Interop.XenStore.Write(lease.Value, transaction.Id, p, d, (uint)data.Length);
        }

        if (ok == 0)
        {
            throw Error("xs_write", path, Marshal.GetLastWin32Error());
        }
    }

    /// <inheritdoc/>
    public unsafe bool Remove(string path, XenStoreTransaction transaction = default)
    {
        byte[] name = Terminated(path);
        using var lease = new HandleLease(_handle);
        byte ok;
        fixed (byte* p = name)
        {
            ok = Interop.XenStore.Remove(lease.Value, transaction.Id, p);
        }

        if (ok == 0)
        {
            int errno = Marshal.GetLastWin32Error();
            return errno == Errno.ENOENT ? false : throw Error("xs_rm", path, errno);
        }

        return true;
    }

    /// <inheritdoc/>
    public unsafe IReadOnlyList<string>? List(string path, XenStoreTransaction transaction = default)
    {
        byte[] name = Terminated(path);
        using var lease = new HandleLease(_handle);
        uint count;
        byte** entries;
        fixed (byte* p = name)
        {
            entries = Interop.XenStore.Directory(lease.Value, transaction.Id, p, &count);
        }

        if (entries == null)
        {
            int errno = Marshal.GetLastWin32Error();
            return errno == Errno.ENOENT ? null : throw Error("xs_directory", path, errno);
        }

        try
        {
            var children = new string[count];
            for (int i = 0; i < children.Length; i++)
            {
                children[i] = FromTerminated(entries[i]);
            }

            return children;
        }
        finally
        {
            // One block: the pointer array and the strings after it (xs.c's xs_directory allocates them together).
            Interop.Libc.Free(entries);
        }
    }

    /// <inheritdoc/>
    public unsafe IReadOnlyList<XenStorePermissionEntry>? GetPermissions(string path, XenStoreTransaction transaction = default)
    {
        byte[] name = Terminated(path);
        using var lease = new HandleLease(_handle);
        uint count;
        Interop.XenStore.XsPermissions* entries;
        fixed (byte* p = name)
        {
            entries = Interop.XenStore.GetPermissions(lease.Value, transaction.Id, p, &count);
        }

        if (entries == null)
        {
            int errno = Marshal.GetLastWin32Error();
            return errno == Errno.ENOENT ? null : throw Error("xs_get_permissions", path, errno);
        }

        try
        {
            var permissions = new XenStorePermissionEntry[count];
            for (int i = 0; i < permissions.Length; i++)
            {
                permissions[i] = new XenStorePermissionEntry((ushort)entries[i].Id, (XenStoreAccess)(entries[i].Perms & (Interop.XenStore.XS_PERM_READ | Interop.XenStore.XS_PERM_WRITE)));
            }

            return permissions;
        }
        finally
        {
            Interop.Libc.Free(entries);
        }
    }

    /// <inheritdoc/>
    public unsafe void SetPermissions(string path, IReadOnlyList<XenStorePermissionEntry> permissions, XenStoreTransaction transaction = default)
    {
        if (permissions is null)
        {
            throw new ArgumentNullException(nameof(permissions));
        }

        if (permissions.Count == 0)
        {
            throw new ArgumentException("A permission list names at least the owner.", nameof(permissions));
        }

        byte[] name = Terminated(path);
        var entries = new Interop.XenStore.XsPermissions[permissions.Count];
        for (int i = 0; i < entries.Length; i++)
        {
            entries[i] = new Interop.XenStore.XsPermissions { Id = permissions[i].Domain, Perms = (uint)permissions[i].Access };
        }

        using var lease = new HandleLease(_handle);
        byte ok;
        fixed (byte* p = name)
        fixed (Interop.XenStore.XsPermissions* e = entries)
        {
            ok = Interop.XenStore.SetPermissions(lease.Value, transaction.Id, p, e, (uint)entries.Length);
        }

        if (ok == 0)
        {
            throw Error("xs_set_permissions", path, Marshal.GetLastWin32Error());
        }
    }

    /// <inheritdoc/>
    public XenStoreTransaction BeginTransaction()
    {
        using var lease = new HandleLease(_handle);
        uint id = Interop.XenStore.TransactionStart(lease.Value);
        return id == Interop.XenStore.XBT_NULL ? throw Error("xs_transaction_start", null, Marshal.GetLastWin32Error()) : new XenStoreTransaction(id);
    }

    /// <inheritdoc/>
    public bool EndTransaction(XenStoreTransaction transaction, bool abort = false)
    {
        using var lease = new HandleLease(_handle);
        if (Interop.XenStore.TransactionEnd(lease.Value, transaction.Id, abort ? (byte)1 : (byte)0) != 0)
        {
            return true;
        }

        int errno = Marshal.GetLastWin32Error();
        return errno == Errno.EAGAIN ? false : throw Error("xs_transaction_end", null, errno);
    }

    /// <inheritdoc/>
    public unsafe string GetDomainPath(ushort domain)
    {
        using var lease = new HandleLease(_handle);
        byte* path = Interop.XenStore.GetDomainPath(lease.Value, domain);
        if (path == null)
        {
            throw Error("xs_get_domain_path", null, Marshal.GetLastWin32Error());
        }

        try
        {
            return FromTerminated(path);
        }
        finally
        {
            Interop.Libc.Free(path);
        }
    }

    /// <summary>Closes the connection: the watch thread stops first, a waiting <see cref="ReadWatchAsync"/> ends.</summary>
    public void Dispose()
    {
        StopWatchThread();
        _handle.Dispose();
    }

    private static byte[] Terminated(string path)
    {
        if (path is null)
        {
            throw new ArgumentNullException(nameof(path));
        }

        if (path.Length > XenStorePaths.MaxAbsolutePathLength || !NativeText.TryEncodeTerminated(path, out byte[] name))
        {
            throw Error("xenstore", path, Errno.EINVAL);
        }

        return name;
    }

    private static unsafe string FromTerminated(byte* text) => NativeText.DecodeTerminated(text);

    internal static XenStoreException Error(string operation, string? path, int errno)
    {
        string what = errno switch
        {
            Errno.ENOENT when path is null => "xenstored is not running (or this is not a Xen host)",
            Errno.EACCES => "permission denied (this domain may not access the node; a backend runs in dom0 or a driver domain the node's permissions name)",
            Errno.EINVAL => "invalid argument (a malformed path or value)",
            Errno.ENOENT => "no such node",
            Errno.EAGAIN => "try again",
            Errno.ENOSPC => "xenstored's quota reached",
            Errno.EEXIST => "already exists",
            _ => "error",
        };
        string on = path is null ? string.Empty : " on " + path;
        return new XenStoreException(operation, path, errno, string.Format(CultureInfo.InvariantCulture, "{0}{1} failed: {2} (errno {3}).", operation, on, what, errno));
    }
}
