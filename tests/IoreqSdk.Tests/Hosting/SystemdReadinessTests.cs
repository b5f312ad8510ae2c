#if !LIBRARY_NETSTANDARD
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Tests.Xenstore;
using IoreqSdk.Xenstore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using NUnit.Framework;

namespace IoreqSdk.Tests.Hosting;

/// <summary>
/// systemd readiness of the hosted backend (issue 18): READY=1 reaches the service manager's socket only once the
/// service watches xenstore, STOPPING=1 when it stops. Microsoft.Extensions.Hosting.Systemd's AddSystemd switches to
/// systemd's lifetime only when SystemdHelpers.IsSystemdService() — the parent process is systemd (or the process is
/// PID 1 with NOTIFY_SOCKET set), decided once a process — which a test host is not; so this test puts the same lifetime
/// and the same notifier (SystemdNotifier, on the NOTIFY_SOCKET this test listens on) in the host itself. The test of
/// demu serve under a parent named systemd (DemuServeSystemdTests) covers AddSystemd's own decision.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SystemdReadinessTests
{
    [Test]
    public async Task ReadyIsSentOnlyOnceTheBackendWatchesAndStoppingAtItsStop()
    {
        using var rig = new BackendRig();
        string socketPath = Path.Combine(Path.GetTempPath(), $"ioreqsdk-notify-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        var events = new ConcurrentQueue<string>();
        try
        {
            SystemdNotifier notifier = WithNotifySocket(socketPath, () => new SystemdNotifier());
            Assert.That(notifier.IsEnabled, Is.True, "the notifier found NOTIFY_SOCKET");

            HostApplicationBuilder builder = XenstoreBackendHostTests.Build(rig, new());
            builder.Services.AddSingleton<IXenStore>(new WatchRecordingStore(rig.Store.Connect(0), events));
            builder.Services.AddSingleton<ISystemdNotifier>(new RecordingNotifier(notifier, events));
            builder.Services.AddSingleton<IHostLifetime, SystemdLifetime>();
            using IHost host = builder.Build();

            await host.StartAsync(rig.Guard);
            string ready = await ReceiveAsync(listener, rig.Guard);
            await host.StopAsync(rig.Guard);
            string stopping = await ReceiveAsync(listener, rig.Guard);

            string[] order = [.. events];
            int readyAt = Array.IndexOf(order, "notify READY=1");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(ready, Is.EqualTo("READY=1"), "the service manager's socket got readiness");
                Assert.That(stopping, Is.EqualTo("STOPPING=1"), "and the stop");
                Assert.That(readyAt, Is.GreaterThanOrEqualTo(0), string.Join(", ", order));
                Assert.That(order.Take(readyAt).Count(e => e.StartsWith("watch ", StringComparison.Ordinal)), Is.EqualTo(3),
                    "every watch (virtio_disk, ioreq-sdk, @releaseDomain) was placed before READY=1: " + string.Join(", ", order));
            }
        }
        finally
        {
            File.Delete(socketPath);
        }
    }

    private static T WithNotifySocket<T>(string path, Func<T> create)
    {
        // SystemdNotifier reads NOTIFY_SOCKET when it is created; the variable is not left to other tests.
        string? previous = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", path);
        try
        {
            return create();
        }
        finally
        {
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", previous);
        }
    }

    internal static async Task<string> ReceiveAsync(Socket socket, CancellationToken cancellation)
    {
        byte[] buffer = new byte[256];
        int read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellation);
        return Encoding.UTF8.GetString(buffer, 0, read).TrimEnd('\n');
    }

    /// <summary>The notifier the host's lifetime uses, recording when it is asked to notify.</summary>
    private sealed class RecordingNotifier(SystemdNotifier inner, ConcurrentQueue<string> events) : ISystemdNotifier
    {
        public bool IsEnabled => inner.IsEnabled;

        public void Notify(ServiceState state)
        {
            events.Enqueue("notify " + state.ToString());
            inner.Notify(state);
        }
    }

    /// <summary>A xenstore connection recording the watches placed on it.</summary>
    private sealed class WatchRecordingStore(IXenStore inner, ConcurrentQueue<string> events) : IXenStore
    {
        public string? Read(string path, XenStoreTransaction transaction = default) => inner.Read(path, transaction);

        public void Write(string path, string value, XenStoreTransaction transaction = default) => inner.Write(path, value, transaction);

        public bool Remove(string path, XenStoreTransaction transaction = default) => inner.Remove(path, transaction);

        public IReadOnlyList<string>? List(string path, XenStoreTransaction transaction = default) => inner.List(path, transaction);

        public IReadOnlyList<XenStorePermissionEntry>? GetPermissions(string path, XenStoreTransaction transaction = default) => inner.GetPermissions(path, transaction);

        public void SetPermissions(string path, IReadOnlyList<XenStorePermissionEntry> permissions, XenStoreTransaction transaction = default) => inner.SetPermissions(path, permissions, transaction);

        public XenStoreTransaction BeginTransaction() => inner.BeginTransaction();

        public bool EndTransaction(XenStoreTransaction transaction, bool abort = false) => inner.EndTransaction(transaction, abort);

        public void Watch(string path, string token)
        {
            inner.Watch(path, token);
            events.Enqueue("watch " + path);
        }

        public void Unwatch(string path, string token) => inner.Unwatch(path, token);

        public Task<XenStoreWatchEvent> ReadWatchAsync(CancellationToken cancellationToken) => inner.ReadWatchAsync(cancellationToken);

        public string GetDomainPath(ushort domain) => inner.GetDomainPath(domain);

        public void Dispose() => inner.Dispose();
    }
}
#endif
