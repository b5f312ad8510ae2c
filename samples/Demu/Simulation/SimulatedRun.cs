using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using Microsoft.Extensions.Logging;

namespace Demu.Simulation;

/// <summary>
/// The default run: the device on a simulated guest. The guest's firmware enumerates the bus, a scripted driver
/// exercises the device, and the transcript and a summary show what the guest saw.
/// </summary>
internal static class SimulatedRun
{
    private const int TimedReads = 20_000;

    public static int Run(DemuSettings settings)
    {
        if (settings.IsVirtio)
        {
            return Virtio.VirtioRun.Run(settings);
        }

        TextWriter output = settings.Out;
        PciPlatform platform = settings.Platform;
        using ILoggerFactory logging = Logging.Create(settings);
        using var xen = new SimulatedHypervisor(new SimulationOptions { Architecture = settings.Architecture, VcpuCount = 1 });

        var transmitted = new StringBuilder();
        using Stream? serialFile = settings.SerialOutput is null ? null : File.Open(settings.SerialOutput, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        PciDevice device = DeviceFactory.Create(settings, b =>
        {
            transmitted.Append((char)b);
            serialFile?.WriteByte(b);
        });

        string architecture = settings.Architecture == GuestArchitecture.Arm64 ? "Arm64" : "x86 HVM";
        output.WriteLine($"demu: {device.Name} ({device.Identity.VendorId:x4}:{device.Identity.DeviceId:x4}) at {settings.Address} on a simulated {architecture} guest (domain {xen.Domain})");

        GuestDriver driver;
        IoreqServerStatistics statistics;
        double elapsedMicroseconds;
        long requests;
        using (var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, LoggerFactory = logging, Platform = platform }))
        {
            var bridge = new PciHostBridge(server, platform, settings.Address.Segment);
            if (!DeviceFactory.TryAdd(bridge, device, settings))
            {
                return 2;
            }

            server.Start();
            output.WriteLine($"  server    ioreq server {server.Id} created, pages mapped, enabled, event channels bound");

            var functions = SimulatedFirmware.EnumeratePci(xen.Vcpu(0), platform, settings.Address.Segment);
            foreach (EnumeratedFunction function in functions)
            {
                output.WriteLine($"  firmware  {function.Address}  {function.VendorId:x4}:{function.DeviceId:x4}  class {function.ClassCode:x6}");
                foreach (AssignedBar bar in function.Bars)
                {
                    output.WriteLine($"  firmware    BAR{bar.Index}  {Describe(bar)}");
                }
            }

            EnumeratedFunction ours = functions.Single(f => f.Address == settings.Address);
            driver = device switch
            {
                EduDevice edu => new EduDriver(xen, platform, ours, edu, bridge.IntxLineOf(edu)!, output),
                PciSerialDevice serial => new SerialDriver(xen, platform, ours, serial, () => transmitted.ToString(), bridge.IntxLineOf(serial)!, output),
                _ => throw new InvalidOperationException("Unknown device."),
            };

            statistics = server.Statistics;
            driver.Run();

            // The script's own timing is dominated by first-call JIT work; time a burst of idle reads instead, each a
            // full trap -> ioreq -> device -> response round trip through the simulated Xen.
            for (int i = 0; i < TimedReads / 10; i++)
            {
                driver.ReadIdleRegister();
            }

            long before = Served(statistics);
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < TimedReads; i++)
            {
                driver.ReadIdleRegister();
            }

            elapsedMicroseconds = clock.Elapsed.TotalMicroseconds;
            requests = Served(statistics) - before;
        }

        output.WriteLine($"  server    stopped: event channels unbound, ioreq server destroyed{(xen.CrashReason is null ? string.Empty : $"; guest crashed: {xen.CrashReason}")}");
        output.WriteLine();
        output.WriteLine("Summary");
        foreach (var (label, text) in driver.Summary)
        {
            output.WriteLine($"  {label,-11} {text}");
        }

        output.WriteLine($"  {"requests",-11} {statistics.PciConfigRequests} PCI config, {statistics.MmioRequests} MMIO, {statistics.PioRequests} port I/O, {statistics.BufferedEntries} buffered; {statistics.UnclaimedReads + statistics.UnclaimedWrites} unclaimed, {statistics.DeviceFaults} device faults");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"mean time",-11} {elapsedMicroseconds / Math.Max(1, requests):0.00} µs per request, vCPU trap to response ({requests} idle register reads in {elapsedMicroseconds / 1000:0.0} ms)"));
        output.WriteLine($"  {"checks",-11} {driver.Passed} passed, {driver.Failed} failed");
        return driver.Failed == 0 && xen.CrashReason is null ? 0 : 1;
    }

    private static long Served(IoreqServerStatistics statistics) =>
        statistics.PciConfigRequests + statistics.MmioRequests + statistics.PioRequests;

    private static string Describe(AssignedBar bar)
    {
        string kind = bar.Kind switch
        {
            PciBarKind.Io => "I/O",
            PciBarKind.Memory64 => bar.Prefetchable ? "mem64 prefetchable" : "mem64",
            PciBarKind.ExpansionRom => "ROM",
            _ => bar.Prefetchable ? "mem32 prefetchable" : "mem32",
        };
        string size = bar.Size >= 1 << 20 ? $"{bar.Size >> 20} MiB" : bar.Size >= 1024 ? $"{bar.Size >> 10} KiB" : $"{bar.Size} bytes";
        string where = bar.Kind == PciBarKind.Io && bar.CpuAddress != bar.BusAddress
            ? $"ports 0x{bar.BusAddress:x}, reached at MMIO 0x{bar.CpuAddress:x} through the PIO aperture"
            : bar.Kind == PciBarKind.Io ? $"ports 0x{bar.BusAddress:x}" : $"0x{bar.CpuAddress:x}";
        return $"{kind}  {size}  {where}";
    }
}
