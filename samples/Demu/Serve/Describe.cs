using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Xen.Store;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;

namespace Demu.Serve;

/// <summary><c>demu describe</c>: writes a device into the SDK's namespace as libxl writes its own, and waits for InitWait as libxl does.</summary>
internal static class Describe
{
    public static async Task<int> RunAsync(ushort backend, ushort domain, uint deviceId, string type, IReadOnlyDictionary<string, string> keys, bool wait, TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        if (!XenStore.TryOpen(out XenStore? store, out string? reason))
        {
            error.WriteLine($"demu describe: {reason}");
            return 2;
        }

        using (store)
        {
            return await RunAsync(store, backend, domain, deviceId, type, keys, wait ? Task.Delay(BackendDeviceDescription.InitTimeout, cancellation) : null, output, error, cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>The same over any store (the tests' simulated one), waiting until <paramref name="timeout"/> when it is given.</summary>
    public static async Task<int> RunAsync(IXenStore store, ushort backend, ushort domain, uint deviceId, string type, IReadOnlyDictionary<string, string> keys, Task? timeout, TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        string path;
        try
        {
            path = BackendDeviceDescription.DescribeSdkDevice(store, backend, domain, deviceId, type, keys);
        }
        catch (XenStoreException e)
        {
            error.WriteLine($"demu describe: {e.Message}");
            return 1;
        }

        output.WriteLine(path);
        if (timeout is null)
        {
            return 0;
        }

        bool ready;
        try
        {
            ready = await BackendDeviceDescription.WaitForStateAsync(store, path, XenbusState.InitWait, timeout, cancellation).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return 1;
        }

        string? state = store.Read(path + "/state");
        if (ready)
        {
            error.WriteLine($"demu describe: the backend serves {path} (state InitWait); xl unpause the guest");
            return 0;
        }

        error.WriteLine(state == "6"
            ? $"demu describe: the backend refused {path} (state Closed); its log says why"
            : $"demu describe: no backend reported InitWait for {path} within {BackendDeviceDescription.InitTimeout.TotalSeconds:0} s (is demu serve running for backend domain {backend}?)");
        return 1;
    }
}
