using System;
using System.IO;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Devices.Virtio.Console;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;

namespace Demu.Simulation.Virtio;

/// <summary>
/// A virtio --device on the simulated guest: the device behind virtio-mmio or virtio-pci, probed and brought up by a
/// guest driver doing what Linux's virtio_mmio / virtio_pci and virtio core do, then driven by the device's script.
/// </summary>
internal static class VirtioRun
{
    public static int Run(DemuSettings settings)
    {
        TextWriter output = settings.Out;
        using var scratch = settings.Device == DeviceKind.VirtioBlk && settings.Disk is null ? ScratchImage.Create() : null;
        string? image = settings.Disk ?? scratch?.Path;
        using var consoleSink = new MemoryStream();
        (VirtioDevice device, VirtioScript script) = Create(settings, image, consoleSink);
        using var owned = device as IDisposable;
        var options = new SimulationOptions
        {
            Architecture = settings.Architecture,
            VcpuCount = 1,
            VirtioMmioBase = settings.VirtioMmioBase,
            VirtioMmioLine = settings.VirtioMmioLine,
        };
        var kind = settings.Transport == VirtioTransport.Pci ? VirtioTransportKind.Pci : VirtioTransportKind.Mmio;
        IoreqServerStatistics statistics;
        string? crash;
        using (SimulatedVirtioGuest guest = SimulatedVirtioGuest.Create(device, kind, settings.Architecture, initialize: false, options: options))
        {
            string architecture = settings.Architecture == GuestArchitecture.Arm64 ? "Arm64" : "x86 HVM";
            output.WriteLine($"demu: {settings.VirtioName} (virtio device {device.DeviceType}) over {Where(guest)}, on a simulated {architecture} guest (domain {guest.Xen.Domain})");
            output.WriteLine($"  server    ioreq server {guest.Server.Id} created, pages mapped, enabled, event channels bound");
            GuestVirtioDriver driver = guest.Driver;
            script.Check("probe", guest.Transport.DeviceType == device.DeviceType, Probe(guest));
            driver.Initialize(script.Features, script.QueueCount);
            script.Check("negotiate", (driver.Features & VirtioFeatures.Version1) != 0 && (guest.Transport.ReadStatus() & (byte)VirtioDeviceStatus.DriverOk) != 0,
                $"features 0x{driver.Features:x} accepted, {driver.Queues.Count} queue(s) of {driver.Queues[0].Size}, DRIVER_OK");
            script.Drive(guest);
            driver.Reset();
            script.Check("reset", guest.Transport.ReadStatus() == 0 && !guest.Transport.IsQueueEnabled(0), "status 0, queue 0 no longer enabled");
            statistics = guest.Server.Statistics;
            crash = guest.Xen.CrashReason;
        }

        owned?.Dispose();
        output.WriteLine($"  server    stopped: event channels unbound, ioreq server destroyed{(crash is null ? string.Empty : $"; guest crashed: {crash}")}");
        script.AfterStop();
        output.WriteLine();
        output.WriteLine("Summary");
        foreach ((string label, string text) in script.Summary)
        {
            output.WriteLine($"  {label,-11} {text}");
        }

        output.WriteLine($"  {"requests",-11} {statistics.PciConfigRequests} PCI config, {statistics.MmioRequests} MMIO; {statistics.UnclaimedReads + statistics.UnclaimedWrites} unclaimed, {statistics.DeviceFaults} device faults");
        output.WriteLine($"  {"memory",-11} {statistics.GuestFrameMaps} frames mapped, {statistics.GuestMemoryPins} pins in {statistics.GuestMemoryPinWindowMaps} window maps ({statistics.GuestMemoryPinPieceMaps} piece maps)");
        output.WriteLine($"  {"checks",-11} {script.Passed} passed, {script.Failed} failed");
        return script.Failed == 0 && crash is null ? 0 : 1;
    }

    private static (VirtioDevice Device, VirtioScript Script) Create(DemuSettings settings, string? image, MemoryStream consoleSink)
    {
        switch (settings.Device)
        {
            case DeviceKind.VirtioBlk:
                VirtioBlkDevice blk = VirtioBlkDevice.Open(image!, new VirtioBlkOptions { ReadOnly = settings.ReadOnly });
                return (blk, new VirtioBlkScript(blk, image!, settings.ReadOnly, settings.Out));
            case DeviceKind.VirtioConsole:
                var console = new VirtioConsoleDevice(consoleSink);
                return (console, new VirtioConsoleScript(console, consoleSink, settings.Out));
            default:
                var rng = new VirtioRng();
                return (rng, new VirtioRngScript(rng, settings.Out));
        }
    }

    private static string Where(SimulatedVirtioGuest guest) =>
        guest.MmioTransport is { } mmio
            ? $"virtio-mmio at 0x{mmio.Address:x}, {mmio.Interrupt.Description}"
            : $"virtio-pci at {guest.PciGuest!.Address} ({(((GuestVirtioPci)guest.Transport).UsesMsix ? "MSI-X" : "INTx")})";

    private static string Probe(SimulatedVirtioGuest guest) => guest.Transport switch
    {
        GuestVirtioMmio mmio => $"magic \"virt\", version {mmio.Version}, device {mmio.DeviceType}, vendor 0x{mmio.VendorId:x8}",
        GuestVirtioPci pci => $"1af4:{0x1040 + pci.DeviceType:x4}, common/notify (x{pci.NotifyOffMultiplier})/ISR/device capabilities found",
        _ => $"device {guest.Transport.DeviceType}",
    };

    /// <summary>A sparse 64 MiB image in the temporary directory, deleted when the run ends.</summary>
    private sealed class ScratchImage : IDisposable
    {
        private ScratchImage(string path) => Path = path;

        public string Path { get; }

        public static ScratchImage Create()
        {
            string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"demu-virtio-blk-{Environment.ProcessId}-{Guid.NewGuid():N}.img");
            using (FileStream file = File.Create(path))
            {
                file.SetLength(64 << 20);
            }

            return new ScratchImage(path);
        }

        public void Dispose() => File.Delete(Path);
    }
}
