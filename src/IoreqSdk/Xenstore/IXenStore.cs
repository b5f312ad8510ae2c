using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace IoreqSdk.Xenstore;

/// <summary>
/// One connection to xenstore, as a domain sees it: the calls a backend makes (docs/misc/xenstore.txt), over libxenstore on
/// real Xen (<see cref="IoreqSdk.Xen.Store.XenStore"/>) or over the simulated xenstore of IoreqSdk.Simulation.
/// </summary>
/// <remarks>
/// <para>
/// Paths are absolute (<c>/local/domain/0/backend/…</c>) or relative to the connection's own domain path
/// (<c>backend/…</c> is <c>/local/domain/&lt;own id&gt;/backend/…</c>), as xenstored resolves them.
/// </para>
/// <para>
/// Errors: a node that does not exist is an expected answer, not a failure, and comes back as null (or false); a
/// transaction that lost to a conflicting change comes back as false from <see cref="EndTransaction"/>, the caller's cue
/// to retry, as libxl does. Everything else (permission denied, a malformed path, a lost connection) throws
/// <see cref="XenStoreException"/> with the errno xenstored answered: those are faults the caller cannot retry away.
/// </para>
/// <para>Every member may be called from any thread.</para>
/// </remarks>
public interface IXenStore : IDisposable
{
    /// <summary>A node's value; null when the node does not exist.</summary>
    /// <exception cref="XenStoreException">Permission denied, a malformed path, or the connection failed.</exception>
    string? Read(string path, XenStoreTransaction transaction = default);

    /// <summary>Writes a node's value, creating the node and any missing parents (which inherit their parent's permissions).</summary>
    /// <exception cref="XenStoreException">Permission denied, a malformed path or value, or the connection failed.</exception>
    void Write(string path, string value, XenStoreTransaction transaction = default);

    /// <summary>Removes a node and everything under it; false when it did not exist.</summary>
    /// <exception cref="XenStoreException">Permission denied, a malformed path, or the connection failed.</exception>
    bool Remove(string path, XenStoreTransaction transaction = default);

    /// <summary>The names (not paths) of a node's children; null when the node does not exist.</summary>
    /// <exception cref="XenStoreException">Permission denied, a malformed path, or the connection failed.</exception>
    IReadOnlyList<string>? List(string path, XenStoreTransaction transaction = default);

    /// <summary>A node's permissions, owner first (see <see cref="XenStorePermissionEntry"/>); null when the node does not exist.</summary>
    /// <exception cref="XenStoreException">Permission denied, a malformed path, or the connection failed.</exception>
    IReadOnlyList<XenStorePermissionEntry>? GetPermissions(string path, XenStoreTransaction transaction = default);

    /// <summary>Replaces a node's permissions: the first entry is the owner and everyone else's access, the rest per domain.</summary>
    /// <exception cref="XenStoreException">The node does not exist (ENOENT), permission denied, or the connection failed.</exception>
    void SetPermissions(string path, IReadOnlyList<XenStorePermissionEntry> permissions, XenStoreTransaction transaction = default);

    /// <summary>Starts a transaction: its reads see one snapshot, its writes are applied together at the end or not at all.</summary>
    /// <exception cref="XenStoreException">Too many transactions open, or the connection failed.</exception>
    XenStoreTransaction BeginTransaction();

    /// <summary>Commits (or with <paramref name="abort"/> abandons) a transaction; false when a conflicting change won (EAGAIN): start again.</summary>
    /// <exception cref="XenStoreException">The transaction is unknown, or the connection failed.</exception>
    bool EndTransaction(XenStoreTransaction transaction, bool abort = false);

    /// <summary>
    /// Registers a watch: one event at once for <paramref name="path"/> itself (the initial fire, so nothing that existed
    /// before the watch is missed), then one for every creation, change, permission change or removal of the node or any
    /// descendant. <c>@releaseDomain</c> and <c>@introduceDomain</c> watch domains going away and coming.
    /// </summary>
    /// <exception cref="XenStoreException">A malformed path, too many watches, or the connection failed.</exception>
    void Watch(string path, string token);

    /// <summary>Removes a watch registered with the same path and token; events already queued for it may still arrive.</summary>
    /// <exception cref="XenStoreException">No such watch, or the connection failed.</exception>
    void Unwatch(string path, string token);

    /// <summary>
    /// The next watch event. Events wait in a bounded queue; when it overflowed, the next event is
    /// <see cref="XenStoreWatchEvent.Overflow"/> (some events were lost: read again what the watches cover).
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The connection was closed.</exception>
    Task<XenStoreWatchEvent> ReadWatchAsync(CancellationToken cancellationToken);

    /// <summary>The home path of <paramref name="domain"/>: <c>/local/domain/&lt;id&gt;</c>.</summary>
    string GetDomainPath(ushort domain);
}
