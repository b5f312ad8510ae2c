using System;
using System.Collections.Generic;
using System.IO;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Virtio;
using IoreqSdk.Xenstore.Backend;

namespace IoreqSdk.Devices.Backends;

/// <summary>The device types the backend service builds out of the box.</summary>
public static class BackendDevices
{
    /// <summary>libxl's virtio disk, and the SDK namespace's <c>virtio-blk</c> and <c>virtio-rng</c>.</summary>
    public static IReadOnlyList<IBackendDeviceFactory> All { get; } = [new VirtioDiskBackend(), new VirtioBlkBackend(), new VirtioRngBackend()];

    /// <summary>Adds <see cref="All"/> to <paramref name="options"/>.</summary>
    public static XenstoreBackendOptions AddStandardDevices(this XenstoreBackendOptions options)
    {
        if (options is null)
        {
            throw new ArgumentNullException(nameof(options));
        }

        foreach (IBackendDeviceFactory factory in All)
        {
            options.Factories.Add(factory);
        }

        return options;
    }

    internal static VirtioBlkDevice OpenDisk(BackendDeviceRequest request)
    {
        (string path, bool readOnly) = BackendPlacement.Disk(request);
        try
        {
            // One request queue per guest vCPU, as demu and QEMU's num-queues default. The device's own open of the
            // image is the check of what the file is: one open, in the mode the guest gets.
            return VirtioBlkDevice.Open(path, new VirtioBlkOptions { ReadOnly = readOnly, QueueCount = Math.Max(1, Math.Min(request.VcpuCount, VirtioBlkOptions.MaxQueues)) });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw BackendPlacement.OpenImageFailed(path, e);
        }
    }

    internal static IDisposable Build(BackendDeviceRequest request, VirtioDevice device, string transport)
    {
        try
        {
            _ = BackendPlacement.Place(request, device, transport);
            return (device as IDisposable) ?? NoResources.Instance;
        }
        catch
        {
            (device as IDisposable)?.Dispose();
            throw;
        }
    }

    private sealed class NoResources : IDisposable
    {
        public static readonly NoResources Instance = new();

        public void Dispose()
        {
        }
    }
}

/// <summary>
/// libxl's virtio disk (<c>disk = [ '…, backendtype=standalone, specification=virtio' ]</c>, Xen 4.17 on Arm): keys
/// <c>params</c> (the image), <c>mode</c> (<c>w</c> or <c>r</c>), <c>specification</c> (<c>virtio</c>),
/// <c>transport</c> (<c>mmio</c>), <c>base</c> and <c>irq</c> (the slot libxl gave the guest in its device tree).
/// </summary>
public sealed class VirtioDiskBackend : IBackendDeviceFactory
{
    /// <inheritdoc/>
    public string Type => XenstoreBackendService.VirtioDiskKind;

    /// <inheritdoc/>
    public IDisposable? Create(BackendDeviceRequest request)
    {
        if (request is null)
        {
            throw new ArgumentNullException(nameof(request));
        }

        if (request.Keys.TryGetValue("specification", out string? specification) && specification != "virtio")
        {
            throw new BackendDeviceException($"specification '{BackendDeviceRequest.Shorten(specification)}' is not virtio");
        }

        string transport = request.Require("transport");
        if (transport != "mmio")
        {
            throw new BackendDeviceException($"transport '{BackendDeviceRequest.Shorten(transport)}' is not mmio (libxl's virtio disks are virtio-mmio)");
        }

        _ = BackendPlacement.MmioSlot(request);
        return BackendDevices.Build(request, BackendDevices.OpenDisk(request), transport);
    }
}

/// <summary>The SDK namespace's <c>virtio-blk</c>: <c>params</c>, <c>mode</c>, <c>transport</c> (<c>mmio</c> with <c>base</c>/<c>irq</c>, or <c>pci</c> with <c>bdf</c>).</summary>
public sealed class VirtioBlkBackend : IBackendDeviceFactory
{
    /// <inheritdoc/>
    public string Type => "virtio-blk";

    /// <inheritdoc/>
    public IDisposable? Create(BackendDeviceRequest request)
    {
        if (request is null)
        {
            throw new ArgumentNullException(nameof(request));
        }

        string transport = request.Require("transport");
        if (transport == "mmio")
        {
            _ = BackendPlacement.MmioSlot(request);
        }
        else if (transport == "pci")
        {
            _ = BackendPlacement.Bdf(request);
        }

        return BackendDevices.Build(request, BackendDevices.OpenDisk(request), transport);
    }
}

/// <summary>The SDK namespace's <c>virtio-rng</c>: <c>transport</c> (<c>mmio</c> with <c>base</c>/<c>irq</c>, or <c>pci</c> with <c>bdf</c>).</summary>
public sealed class VirtioRngBackend : IBackendDeviceFactory
{
    /// <inheritdoc/>
    public string Type => "virtio-rng";

    /// <inheritdoc/>
    public IDisposable? Create(BackendDeviceRequest request)
    {
        if (request is null)
        {
            throw new ArgumentNullException(nameof(request));
        }

        return BackendDevices.Build(request, new VirtioRng(), request.Require("transport"));
    }
}
