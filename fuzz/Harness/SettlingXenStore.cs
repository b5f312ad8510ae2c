using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Xenstore;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// The backend service's xenstore connection, seen from the harness: every call passes through unchanged, and the watch
/// events it reads are watched for markers, so that <see cref="Settle"/> can wait until the service has handled
/// everything the input did before the input does its next thing. Without that the service would race the harness, an
/// input would not replay the same way twice, and AFL's coverage would follow thread timing.
/// </summary>
/// <remarks>
/// The service's loop asks for event N+1 before it handles event N. So once a marker came out of read R and read R+1
/// was asked for, every event before the marker has been handled; if read R+1 is still waiting, nothing else was queued
/// and the service is idle. Otherwise (the service's own writes queued events behind the marker) another marker goes
/// in. Markers are writes to one of eight nodes under <c>/fuzz-sync</c>, which nothing of the service's watches; the
/// service ignores an event whose token it does not know.
/// </remarks>
internal sealed class SettlingXenStore : IXenStore
{
    private const string MarkerRoot = "/fuzz-sync";
    private const string MarkerToken = "fuzz-sync";
    private const int Markers = 8;

    private readonly IXenStore _inner;
    private readonly IXenStore _writer;
    private readonly TimeSpan _timeout;
    private readonly object _gate = new();
    private long _reads;
    private Task<XenStoreWatchEvent>? _latest;
    private long _latestRead;
    private int _lastMarker = -1;
    private long _lastMarkerRead = -1;
    private long _overflows;
    private int _nextMarker;

    /// <summary>Wraps <paramref name="inner"/> (the service's connection); markers are written through <paramref name="writer"/>.</summary>
    public SettlingXenStore(IXenStore inner, IXenStore writer, TimeSpan timeout)
    {
        _inner = inner;
        _writer = writer;
        _timeout = timeout;
        for (int i = 0; i < Markers; i++)
        {
            _writer.Write(MarkerPath(i), string.Empty);
        }

        // The marker watch's initial fire is consumed by the first Settle, as any other event.
        _inner.Watch(MarkerRoot, MarkerToken);
    }

    /// <summary>Watch events the service was told it had lost (each makes it rescan everything).</summary>
    public long Overflows
    {
        get
        {
            lock (_gate)
            {
                return _overflows;
            }
        }
    }

    /// <summary>
    /// Waits until the service has handled every event queued so far and is waiting for the next one; false when it did
    /// not get there within the timeout (it hangs) or stopped reading (it ended).
    /// </summary>
    public bool Settle(Func<bool> stillRunning)
    {
        long deadline = Environment.TickCount64 + (long)_timeout.TotalMilliseconds;
        while (true)
        {
            int marker = _nextMarker++ % Markers;
            long overflows;
            lock (_gate)
            {
                overflows = _overflows;
                _lastMarker = -1;
            }

            _writer.Write(MarkerPath(marker), string.Empty);
            lock (_gate)
            {
                while (true)
                {
                    if (_overflows != overflows)
                    {
                        // Events were dropped, the marker perhaps with them: the service rescans; mark again.
                        break;
                    }

                    if (_lastMarker == marker && _latestRead > _lastMarkerRead)
                    {
                        if (_latestRead == _lastMarkerRead + 1 && _latest is { IsCompleted: false })
                        {
                            return true;
                        }

                        // More events came after the marker (the service's own writes): mark again behind them.
                        break;
                    }

                    long left = deadline - Environment.TickCount64;
                    if (left <= 0 || !stillRunning())
                    {
                        return false;
                    }

                    _ = Monitor.Wait(_gate, (int)Math.Min(left, 50));
                }
            }

            if (Environment.TickCount64 > deadline)
            {
                return false;
            }
        }
    }

    public Task<XenStoreWatchEvent> ReadWatchAsync(CancellationToken cancellationToken)
    {
        long read;
        lock (_gate)
        {
            read = ++_reads;
        }

        Task<XenStoreWatchEvent> task = Observe(_inner.ReadWatchAsync(cancellationToken), read);
        lock (_gate)
        {
            if (read > _latestRead)
            {
                _latestRead = read;
                _latest = task;
            }

            Monitor.PulseAll(_gate);
        }

        return task;
    }

    public string? Read(string path, XenStoreTransaction transaction = default) => _inner.Read(path, transaction);

    public void Write(string path, string value, XenStoreTransaction transaction = default) => _inner.Write(path, value, transaction);

    public bool Remove(string path, XenStoreTransaction transaction = default) => _inner.Remove(path, transaction);

    public IReadOnlyList<string>? List(string path, XenStoreTransaction transaction = default) => _inner.List(path, transaction);

    public IReadOnlyList<XenStorePermissionEntry>? GetPermissions(string path, XenStoreTransaction transaction = default) => _inner.GetPermissions(path, transaction);

    public void SetPermissions(string path, IReadOnlyList<XenStorePermissionEntry> permissions, XenStoreTransaction transaction = default) =>
        _inner.SetPermissions(path, permissions, transaction);

    public XenStoreTransaction BeginTransaction() => _inner.BeginTransaction();

    public bool EndTransaction(XenStoreTransaction transaction, bool abort = false) => _inner.EndTransaction(transaction, abort);

    public void Watch(string path, string token) => _inner.Watch(path, token);

    public void Unwatch(string path, string token) => _inner.Unwatch(path, token);

    public string GetDomainPath(ushort domain) => _inner.GetDomainPath(domain);

    public void Dispose() => _inner.Dispose();

    private static string MarkerPath(int marker) => MarkerRoot + "/" + marker.ToString(CultureInfo.InvariantCulture);

    private async Task<XenStoreWatchEvent> Observe(Task<XenStoreWatchEvent> read, long index)
    {
        // An event already queued comes back synchronously, as it would to the service directly.
        XenStoreWatchEvent watchEvent = await read.ConfigureAwait(false);
        if (watchEvent.IsOverflow || watchEvent.Token == MarkerToken)
        {
            lock (_gate)
            {
                if (watchEvent.IsOverflow)
                {
                    _overflows++;
                }
                else if (watchEvent.Path.Length == MarkerRoot.Length + 2)
                {
                    _lastMarker = watchEvent.Path[^1] - '0';
                    _lastMarkerRead = index;
                }

                Monitor.PulseAll(_gate);
            }
        }

        return watchEvent;
    }
}
