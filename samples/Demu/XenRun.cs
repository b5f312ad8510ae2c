using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Demu.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Server;
using IoreqSdk.Xen;
using Microsoft.Extensions.Logging;

namespace Demu;

/// <summary>
/// A run on real Xen for the guest named by --domain: one ioreq server claiming one PCI function, served until
/// Ctrl-C, SIGTERM or the guest's end, then torn down (the ioreq server destroyed).
/// </summary>
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

        using (xen)
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
            PciDevice device = DeviceFactory.Create(settings, serialPump.Write);

            using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = domain, LoggerFactory = logging });
            var bridge = new PciHostBridge(server, settings.Platform, settings.Address.Segment);
            if (!DeviceFactory.TryAdd(bridge, device, settings))
            {
                return 2;
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            try
            {
                Task serving = server.RunAsync(stop.Token);
                settings.Error.WriteLine($"demu: {device.Name} ({device.Identity.VendorId:x4}:{device.Identity.DeviceId:x4}) at {settings.Address} for domain {domain}, ioreq server {server.Id}; Ctrl-C to stop");
                if (settings.Architecture == GuestArchitecture.Arm64)
                {
                    settings.Error.WriteLine("demu: describe the host bridge to the guest with this device-tree node:");
                    settings.Error.WriteLine(bridge.DescribeDeviceTreeNode());
                }

                if (device is PciSerialDevice serial)
                {
                    StartInput(serial, stop.Token);
                }

                Task watch = WatchGuestAsync(xen, domain, server.Id, stop, settings.Error);
                await serving.ConfigureAwait(false);
                stop.Cancel();
                await watch.ConfigureAwait(false);
            }
            catch (HypervisorException e)
            {
                settings.Error.WriteLine($"demu: {e.Message}");
                return 1;
            }

            string serialBytes = device is PciSerialDevice uart ? $" Serial: {uart.BytesTransmitted} bytes from the guest, {uart.BytesReceived} to it, {uart.Uart.Overruns} overruns." : string.Empty;
            settings.Error.WriteLine($"demu: stopped; ioreq server destroyed. {server.Statistics.PciConfigRequests} PCI config, {server.Statistics.MmioRequests} MMIO and {server.Statistics.PioRequests} port I/O requests served.{serialBytes}");
            return 0;
        }
    }

    /// <summary>
    /// Stops the run when the guest goes away. Killing a domain destroys its ioreq servers at once, while the domain
    /// itself lingers (dying) until every mapping of its pages — ours included — is gone: so ask about the server
    /// (ENOENT once destroyed), not the domain (ESRCH only once fully gone).
    /// </summary>
    private static async Task WatchGuestAsync(XenHypervisor xen, ushort domain, ushort server, CancellationTokenSource stop, TextWriter error)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(GuestCheckInterval, stop.Token).ConfigureAwait(false);
                _ = xen.GetBufferedIoreqPort(domain, server);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (HypervisorException e) when (e.ErrorNumber is Errno.ESRCH or Errno.ENOENT)
            {
                error.WriteLine($"demu: domain {domain} is gone; stopping.");
                stop.Cancel();
                return;
            }
        }
    }

    /// <summary>Standard input to the guest's receiver, a read at a time, on a background thread.</summary>
    private static void StartInput(PciSerialDevice serial, CancellationToken stop)
    {
        var thread = new Thread(() =>
        {
            using Stream input = Console.OpenStandardInput();
            byte[] buffer = new byte[256];
            int read;
            while (!stop.IsCancellationRequested && (read = input.Read(buffer, 0, buffer.Length)) > 0)
            {
                // The device holds a bounded backlog: wait for the guest to read (flow control), rather than queue more.
                for (int sent = 0; sent < read && !stop.IsCancellationRequested;)
                {
                    int accepted = serial.SendToGuest(buffer.AsSpan(sent, read - sent));
                    sent += accepted;
                    if (accepted == 0)
                    {
                        stop.WaitHandle.WaitOne(10);
                    }
                }
            }
        })
        {
            IsBackground = true,
            Name = "demu stdin",
        };
        thread.Start();
    }
}
