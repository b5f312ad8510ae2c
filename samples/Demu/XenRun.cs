using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Devices.Virtio.Console;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Hypervisor;
using IoreqSdk.Hosting;
using IoreqSdk.Pci;
using IoreqSdk.Server;
using IoreqSdk.Virtio;
using IoreqSdk.Xen;

namespace Demu;

/// <summary>
/// A run on real Xen for the guest named by --domain: one ioreq server claiming one PCI function (or a virtio-mmio
/// device), served until Ctrl-C, SIGTERM or the guest's end, then torn down (the ioreq server destroyed).
/// </summary>
/// <remarks>
/// The run is IoreqSdk.Hosting's hosted service on the Generic Host (<see cref="XenHost"/>), as an application of the
/// SDK's would run it: the host starts the server, stops it on a signal within its bound, destroys the server when a
/// device call does not return, and stops when the guest is gone. demu's own steps are its hooks and hosted services:
/// the restriction's witness call before the start, its proof, the "ioreq server" line and the guest-side hints once
/// the server is up, the serial device's standard input. What stays here is what a process does before and after a
/// host: opening Xen and checking the platform (exit code 2 and one line when it cannot run), creating the device,
/// and the last line with what was served.
/// </remarks>
internal static class XenRun
{
    public static async Task<int> RunAsync(DemuSettings settings, CancellationToken cancellation)
    {
        if (!XenHypervisor.TryOpen(out XenHypervisor? xen, out string? reason))
        {
            settings.Error.WriteLine($"demu: {reason}");
            return DemuHelp.CannotRun;
        }

        // Disposed only when the run tore down by itself: an abandoned event loop may still be inside a call on these
        // handles, and the process is about to exit anyway.
        bool abandoned = false;
        try
        {
            if (xen.Architecture != settings.Architecture)
            {
                settings.Error.WriteLine($"demu: --platform says {settings.Architecture} but this Xen host serves {xen.Architecture} guests; drop --platform or correct it.");
                return DemuHelp.CannotRun;
            }

            (int exitCode, abandoned) = await ServeAsync(settings, xen, cancellation).ConfigureAwait(false);
            return exitCode;
        }
        finally
        {
            if (!abandoned)
            {
                xen.Dispose();
            }
        }
    }

    /// <summary>
    /// Serves --domain on <paramref name="hypervisor"/> (real Xen from <see cref="RunAsync"/>, a simulated Xen in the
    /// tests: the same host composition) and prints the last line; <paramref name="compose"/> and
    /// <paramref name="created"/> let a test add to the host and reach it.
    /// </summary>
    /// <returns>The exit code, and whether the event loop was abandoned (the device and the hypervisor must then be left alone).</returns>
    internal static async Task<(int ExitCode, bool Abandoned)> ServeAsync(
        DemuSettings settings, IHypervisor hypervisor, CancellationToken cancellation, Action<IoreqServerBuilder>? compose = null, Action<XenHost>? created = null)
    {
        ushort domain = settings.Domain!.Value;
        using Stream serialOutput = settings.SerialOutput is null
            ? Console.OpenStandardOutput()
            : File.Open(settings.SerialOutput, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);

        // Off the loop: a stream that blocks must not stall the guest's accesses to the device.
        using var serialPump = new SerialOutputPump(serialOutput);
        PciDevice? device = null;
        VirtioDevice? virtio = null;
        XenHost? host = null;
        bool abandoned = false;
        try
        {
            if (settings.IsVirtio)
            {
                virtio = CreateVirtio(settings, hypervisor.GetVcpuCount(domain));
            }
            else
            {
                device = DeviceFactory.Create(settings, serialPump.Write);
            }

            host = XenHost.Create(settings, hypervisor, device, virtio, compose);
            created?.Invoke(host);
            int exitCode = await host.RunAsync(cancellation).ConfigureAwait(false);
            abandoned = host.Abandoned;
            if (exitCode != 0 || abandoned)
            {
                return (exitCode, abandoned);
            }
        }
        catch (HypervisorException e)
        {
            settings.Error.WriteLine($"demu: {e.Message}{Advice(e)}");
            return (DemuHelp.RunFailed, false);
        }
        finally
        {
            if (!abandoned)
            {
                host?.Dispose();

                // After the server: no request reaches the device any more (blk's image closes here).
                (virtio as IDisposable)?.Dispose();
            }
        }

        string serialBytes = device is PciSerialDevice uart ? $" Serial: {uart.BytesTransmitted} bytes from the guest, {uart.BytesReceived} to it, {uart.Uart.Overruns} overruns." : string.Empty;
        serialBytes += virtio switch
        {
            VirtioBlkDevice blk => $" Disk: {blk.CompletedRequests} requests completed ({blk.ZeroCopyRequests} zero-copy), {blk.FailedRequests} failed, {blk.UnsupportedRequests} unsupported, {blk.MalformedRequests} malformed.",
            VirtioConsoleDevice console => $" Console: {console.BytesWritten} bytes from the guest, {console.BytesReceived} to it.",
            VirtioRng rng => $" Entropy: {rng.BytesDelivered} bytes in {rng.BuffersReturned} buffers.",
            _ => string.Empty,
        };
        IoreqServerStatistics stats = host!.Served.Server!.Statistics;
        string memory = $" Guest memory: {stats.GuestFrameMaps} frames mapped, {stats.GuestMemoryPins} pins in {stats.GuestMemoryPinWindowMaps} window maps ({stats.GuestMemoryPinPieceMaps} piece maps), {stats.InvalidateRequests} invalidations.";
        settings.Error.WriteLine($"demu: stopped; ioreq server destroyed. {stats.PciConfigRequests} PCI config, {stats.MmioRequests} MMIO and {stats.PioRequests} port I/O requests served.{serialBytes}{memory}");
        return (DemuHelp.Success, false);
    }

    /// <summary>What demu's user can change when a Xen call fails (the SDK's message says what failed and why).</summary>
    internal static string Advice(HypervisorException e)
    {
        // An older kernel without the privcmd or evtchn RESTRICT ioctls cannot deprivilege: say how to run anyway.
        if (e.Operation?.EndsWith("_restrict", StringComparison.Ordinal) == true)
        {
            return " This kernel cannot restrict Xen handles; --no-restrict runs without deprivileging.";
        }

        return e.ErrorNumber switch
        {
            Errno.EEXIST => " Another device model of the guest (its QEMU, or another demu) serves these addresses: choose another --bdf (or --virtio-mmio-base).",
            Errno.ENOSPC => " Stop one of the guest's other device models, or serve the device from one that runs already.",
            _ => string.Empty,
        };
    }

    /// <summary>The virtio device --device names: blk over --disk (a request queue per guest vCPU, up to blk's limit), console on standard output and input, rng.</summary>
    private static VirtioDevice CreateVirtio(DemuSettings settings, int vcpus)
    {
        switch (settings.Device)
        {
            case DeviceKind.VirtioBlk:
                // The command line checked the image (DemuCommand.CheckDisk); a change since then fails here, before the
                // server runs. One queue per vCPU, as QEMU's num-queues default: Linux's virtio_blk maps them to CPUs.
                return VirtioBlkDevice.Open(settings.Disk!, new VirtioBlkOptions
                {
                    ReadOnly = settings.ReadOnly,
                    QueueCount = Math.Clamp(vcpus, 1, VirtioBlkOptions.MaxQueues),
                });
            case DeviceKind.VirtioConsole:
                var console = new VirtioConsoleDevice(Console.OpenStandardOutput());
                console.StartInput(Console.OpenStandardInput());
                return console;
            default:
                return new VirtioRng();
        }
    }
}
