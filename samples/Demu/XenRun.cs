using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Devices.Virtio.Console;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Virtio.Pci;
using IoreqSdk.Xen;
using Microsoft.Extensions.Logging;

namespace Demu;

/// <summary>
/// A run on real Xen for the guest named by --domain: one ioreq server claiming one PCI function, served until
/// Ctrl-C, SIGTERM or the guest's end, then torn down (the ioreq server destroyed).
/// </summary>
/// <remarks>
/// Not on IoreqSdk.Hosting's hosted service (which does the same life cycle for an application): demu's run has steps
/// between the server's creation and its start and around it that a hosted service has no place for — the
/// restriction's witness call before Start and its proof after, the guest-side hints printed once the server is up,
/// the serial device's standard-input pump — and it reports through exit codes and one-line messages rather than a
/// host's logs. Guest-watching is the SDK's (<see cref="IoreqServerShutdown.WaitForGuestGoneAsync"/>) either way.
/// </remarks>
internal static class XenRun
{
    private static readonly TimeSpan GuestCheckInterval = TimeSpan.FromSeconds(1);

    public static async Task<int> RunAsync(DemuSettings settings, CancellationToken cancellation)
    {
        ushort domain = settings.Domain!.Value;
        if (!XenHypervisor.TryOpen(out XenHypervisor? xen, out string? reason))
        {
            settings.Error.WriteLine($"demu: {reason}");
            return 2;
        }

        // Disposed only when the run tore down by itself: an abandoned event loop may still be inside a call on these
        // handles, and the process is about to exit anyway.
        bool abandoned = false;
        try
        {
            if (xen.Architecture != settings.Architecture)
            {
                settings.Error.WriteLine($"demu: --platform says {settings.Architecture} but this Xen host serves {xen.Architecture} guests; drop --platform or correct it.");
                return 2;
            }

            using ILoggerFactory logging = Logging.Create(settings);
            using Stream serialOutput = settings.SerialOutput is null
                ? Console.OpenStandardOutput()
                : File.Open(settings.SerialOutput, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);

            // Off the loop: a stream that blocks must not stall the guest's accesses to the device.
            using var serialPump = new SerialOutputPump(serialOutput);
            var server = new IoreqServer(xen, new IoreqServerOptions { Domain = domain, LoggerFactory = logging, RestrictHandlesToDomain = settings.Restrict });
            PciDevice? device = null;
            VirtioDevice? virtio = null;
            try
            {
                Served served;
                if (settings.IsVirtio)
                {
                    virtio = CreateVirtio(settings, xen.GetVcpuCount(domain));
                    if (AddVirtio(settings, server, virtio) is not Served added)
                    {
                        return 2;
                    }

                    served = added;
                }
                else
                {
                    device = DeviceFactory.Create(settings, serialPump.Write);
                    var bridge = new PciHostBridge(server, settings.Platform, settings.Address.Segment);
                    if (!DeviceFactory.TryAdd(bridge, device, settings))
                    {
                        return 2;
                    }

                    served = new Served(
                        $"{device.Name} ({device.Identity.VendorId:x4}:{device.Identity.DeviceId:x4}) at {settings.Address}",
                        bridge.Platform is EcamPlatform ? "describe the host bridge to the guest with this device-tree node:\n" + bridge.DescribeDeviceTreeNode() : null,
                        device as PciSerialDevice);
                }

                (int exitCode, abandoned) = await ServeAsync(settings, xen, server, served, cancellation).ConfigureAwait(false);
                if (exitCode != 0 || abandoned)
                {
                    return abandoned ? 1 : exitCode;
                }
            }
            catch (HypervisorException e)
            {
                settings.Error.WriteLine($"demu: {e.Message}{Advice(e)}");
                return DemuHelp.RunFailed;
            }
            finally
            {
                if (!abandoned)
                {
                    server.Dispose();

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
            IoreqServerStatistics stats = server.Statistics;
            string memory = $" Guest memory: {stats.GuestFrameMaps} frames mapped, {stats.GuestMemoryPins} pins in {stats.GuestMemoryPinWindowMaps} window maps ({stats.GuestMemoryPinPieceMaps} piece maps), {stats.InvalidateRequests} invalidations.";
            settings.Error.WriteLine($"demu: stopped; ioreq server destroyed. {stats.PciConfigRequests} PCI config, {stats.MmioRequests} MMIO and {stats.PioRequests} port I/O requests served.{serialBytes}{memory}");
            return 0;
        }
        finally
        {
            if (!abandoned)
            {
                xen.Dispose();
            }
        }
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

    /// <summary>Serves until a signal, the guest's end or a failed restriction; then tears down, bounded.</summary>
    private static async Task<(int ExitCode, bool Abandoned)> ServeAsync(
        DemuSettings settings, XenHypervisor xen, IoreqServer server, Served served, CancellationToken cancellation)
    {
        ushort domain = settings.Domain!.Value;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        using IDisposable signals = Teardown.OnSignals(stop);

        // The restriction's witness call, before the server (whose Start restricts) comes up.
        string? unrestricted = settings.Restrict ? RestrictionProof.CallFor(xen, RestrictionProof.Witness(domain)) : null;

        // Start runs synchronously inside RunAsync: when it returns, the server is up (or the task holds why not).
        Task serving = server.RunAsync(stop.Token);
        if (serving.IsFaulted)
        {
            await serving.ConfigureAwait(false);
        }

        ushort id = server.Id;

        // Whatever thread dies of an unhandled exception, the process goes with it: destroy the server first.
        UnhandledExceptionEventHandler lastResort = (_, _) =>
        {
            try
            {
                xen.DestroyIoreqServer(domain, id);
            }
            catch (Exception e) when (e is HypervisorException or ObjectDisposedException)
            {
                // Nothing more can be done on the way out.
            }
        };
        AppDomain.CurrentDomain.UnhandledException += lastResort;
        try
        {
            settings.Error.WriteLine($"demu: {served.What} for domain {domain}, ioreq server {id}; Ctrl-C to stop");
            int exitCode = 0;
            if (settings.Restrict)
            {
                bool holds = RestrictionProof.Check(xen, domain, unrestricted!, out string line);
                settings.Error.WriteLine(line);
                if (!holds)
                {
                    exitCode = 1;
                    stop.Cancel();
                }
            }

            if (served.GuestHint is string hint)
            {
                settings.Error.WriteLine($"demu: {hint}");
            }

            if (served.Serial is PciSerialDevice serial)
            {
                StartInput(serial, settings.Error, stop.Token);
            }

            Task watch = WatchGuestAsync(server, stop, settings.Error);
            var stopped = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using (stop.Token.Register(() => stopped.TrySetResult(true)))
            {
                // The watch ending on its own (a failure other than the guest's end) stops the run too: demu does not
                // serve on, blind to the guest going away.
                await Task.WhenAny(stopped.Task, serving, watch).ConfigureAwait(false);
            }

            stop.Cancel();
            bool finished = await Teardown.FinishAsync(serving, xen, domain, id, Teardown.DefaultBound, settings.Error).ConfigureAwait(false);
            await watch.ConfigureAwait(false);
            return (exitCode, !finished);
        }
        finally
        {
            AppDomain.CurrentDomain.UnhandledException -= lastResort;
        }
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

    /// <summary>
    /// Puts the virtio device on its transport: virtio-mmio at the platform's slot (Xen's first on Arm64, whose SPI must
    /// be one libxl gave the guest), or virtio-pci at --bdf behind the host bridge. Null (reason printed) when refused.
    /// </summary>
    private static Served? AddVirtio(DemuSettings settings, IoreqServer server, VirtioDevice device)
    {
        if (settings.Transport == VirtioTransport.Mmio)
        {
            var mmio = new VirtioMmioTransport(device, settings.VirtioMmioBase, server.CreateInterruptLine(settings.VirtioMmioLine));
            server.AddDevice(mmio);
            string hint = settings.Architecture == GuestArchitecture.Arm64
                ? $"the guest finds {settings.VirtioName} through this device-tree node (libxl writes it for a virtio disk in the same slot):\n"
                    + VirtioMmioTransport.DescribeDeviceTreeNodeAt(mmio.Address, settings.VirtioMmioLine)
                : FormattableString.Invariant($"give the guest's kernel virtio_mmio.device=512@0x{mmio.Address:x}:{settings.VirtioMmioLine}");
            return new Served(FormattableString.Invariant($"{settings.VirtioName} over virtio-mmio at 0x{mmio.Address:x} ({mmio.Interrupt.Description})"), hint, null);
        }

        var pci = new VirtioPciTransport(device);
        var bridge = new PciHostBridge(server, settings.Platform, settings.Address.Segment);
        if (!DeviceFactory.TryAdd(bridge, pci, settings))
        {
            return null;
        }

        return new Served(
            $"{settings.VirtioName} over virtio-pci ({pci.Identity.VendorId:x4}:{pci.Identity.DeviceId:x4}) at {settings.Address}",
            bridge.Platform is EcamPlatform ? "describe the host bridge to the guest with this device-tree node:\n" + bridge.DescribeDeviceTreeNode() : null,
            null);
    }

    /// <summary>What a run serves: how to name it, what to tell the user about the guest's side, the serial device if it is one.</summary>
    private sealed record Served(string What, string? GuestHint, PciSerialDevice? Serial);

    /// <summary>
    /// Stops the run when the guest goes away, as the SDK sees it (<see cref="IoreqServerShutdown.WaitForGuestGoneAsync"/>:
    /// it asks Xen about the ioreq server, which a destroyed domain loses at once). A watch that cannot ask any more
    /// stops the run too: demu does not serve on, blind to the guest's end.
    /// </summary>
    private static async Task WatchGuestAsync(IoreqServer server, CancellationTokenSource stop, TextWriter error)
    {
        try
        {
            if (await server.WaitForGuestGoneAsync(GuestCheckInterval, stop.Token).ConfigureAwait(false))
            {
                error.WriteLine($"demu: domain {server.Domain} is gone; stopping.");
                stop.Cancel();
            }
        }
        catch (HypervisorException e)
        {
            error.WriteLine($"demu: cannot ask Xen about domain {server.Domain} any more ({e.Message}); stopping.");
            stop.Cancel();
        }
    }

    /// <summary>Standard input to the guest's receiver, a read at a time, on a background thread.</summary>
    private static void StartInput(PciSerialDevice serial, TextWriter error, CancellationToken stop)
    {
        var thread = new Thread(() =>
        {
            try
            {
                Pump(serial, stop);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // An unhandled exception here would end the process without tearing the server down: the guest
                // simply gets no more input.
                error.WriteLine($"demu: standard input closed for the guest: {e.Message}");
            }
        })
        {
            IsBackground = true,
            Name = "demu stdin",
        };
        thread.Start();
    }

    private static void Pump(PciSerialDevice serial, CancellationToken stop)
    {
        using Stream input = Console.OpenStandardInput();
        byte[] buffer = new byte[256];
        int read;

        // Read no more than the guest takes: SendToGuest waits while the device's bounded host queue is full, so a
        // guest that stops reading holds standard input off instead of growing demu's memory.
        while (!stop.IsCancellationRequested && (read = input.Read(buffer, 0, buffer.Length)) > 0)
        {
            serial.SendToGuest(buffer.AsSpan(0, read), stop);
        }
    }
}
