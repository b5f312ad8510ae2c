using System;
using System.IO;
using System.Linq;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Mmio;

namespace Demu.Simulation;

/// <summary>
/// --device virtio-rng on the simulated guest: virtio-rng behind virtio-mmio, probed and brought up by a guest driver
/// doing what Linux's virtio_mmio and virtio core do, then asked for entropy as virtio_rng asks, with the cases the
/// specification names (a buffer past the device's cap, a zero-length one, a device-readable one).
/// </summary>
internal static class VirtioRngRun
{
    public static int Run(DemuSettings settings)
    {
        TextWriter output = settings.Out;
        var rng = new VirtioRng();
        var options = new SimulationOptions
        {
            Architecture = settings.Architecture,
            VcpuCount = 1,
            VirtioMmioBase = settings.VirtioMmioBase,
            VirtioMmioLine = settings.VirtioMmioLine,
        };
        var script = new Script(output);
        IoreqServerStatistics statistics;
        string? crash;
        using (SimulatedVirtioGuest guest = SimulatedVirtioGuest.Create(rng, VirtioTransportKind.Mmio, settings.Architecture, initialize: false, options: options))
        {
            VirtioMmioTransport mmio = guest.MmioTransport!;
            string architecture = settings.Architecture == GuestArchitecture.Arm64 ? "Arm64" : "x86 HVM";
            output.WriteLine($"demu: virtio-rng (virtio device {VirtioRng.DeviceId}) over virtio-mmio at 0x{mmio.Address:x}, {mmio.Interrupt.Description}, on a simulated {architecture} guest (domain {guest.Xen.Domain})");
            output.WriteLine($"  server    ioreq server {guest.Server.Id} created, pages mapped, enabled, event channels bound");
            Drive(guest, rng, script);
            statistics = guest.Server.Statistics;
            crash = guest.Xen.CrashReason;
        }

        output.WriteLine($"  server    stopped: event channels unbound, ioreq server destroyed{(crash is null ? string.Empty : $"; guest crashed: {crash}")}");
        output.WriteLine();
        output.WriteLine("Summary");
        output.WriteLine($"  {"entropy",-11} {rng.BytesDelivered} bytes in {rng.BuffersReturned} buffers ({rng.ReadOnlyBuffers} device-readable refused)");
        output.WriteLine($"  {"requests",-11} {statistics.MmioRequests} MMIO; {statistics.UnclaimedReads + statistics.UnclaimedWrites} unclaimed, {statistics.DeviceFaults} device faults");
        output.WriteLine($"  {"checks",-11} {script.Passed} passed, {script.Failed} failed");
        return script.Failed == 0 && crash is null ? 0 : 1;
    }

    private static void Drive(SimulatedVirtioGuest guest, VirtioRng rng, Script script)
    {
        var mmio = (GuestVirtioMmio)guest.Transport;
        GuestVirtioDriver driver = guest.Driver;
        script.Check("probe", mmio.Version == 2 && mmio.DeviceType == VirtioRng.DeviceId, $"magic \"virt\", version {mmio.Version}, device {mmio.DeviceType}, vendor 0x{mmio.VendorId:x8}");

        driver.Initialize(VirtioFeatures.EventIndex);
        script.Check("negotiate", (driver.Features & VirtioFeatures.Version1) != 0 && (mmio.ReadStatus() & (byte)VirtioDeviceStatus.DriverOk) != 0,
            $"features 0x{driver.Features:x} accepted, queue 0 of {driver.Queues[0].Size}, DRIVER_OK");

        ulong buffer = driver.Allocate(1 << 20);
        uint length = Request(guest, new GuestBuffer(buffer, 64, true), out bool interrupted);
        byte[] sample = guest.Memory.Span(buffer, 8).ToArray();
        script.Check("request 64 bytes", length == 64 && interrupted && guest.Memory.Span(buffer, 64).ToArray().Any(b => b != 0),
            $"{length} bytes after a used-buffer interrupt: {string.Concat(sample.Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)))}...");

        length = Request(guest, new GuestBuffer(buffer, 1 << 20, true), out _);
        script.Check("request 1 MiB", length == rng.MaxBytesPerBuffer, $"{length} bytes: the device's cap per buffer (the spec lets it fill less)");

        length = Request(guest, new GuestBuffer(buffer, 0, true), out _);
        script.Check("zero-length buffer", length == 0, "returned with length 0");

        length = Request(guest, new GuestBuffer(buffer, 16, false), out _);
        script.Check("read-only buffer", length == 0 && rng.ReadOnlyBuffers == 1, "returned with length 0, never read");

        driver.Reset();
        script.Check("reset", mmio.ReadStatus() == 0 && !mmio.IsQueueEnabled(0), "status 0, queue 0 no longer ready");
    }

    /// <summary>One buffer, as virtio_rng posts it: kick, wait for the interrupt (bounded), take it back.</summary>
    private static uint Request(SimulatedVirtioGuest guest, GuestBuffer buffer, out bool interrupted)
    {
        guest.Driver.Submit(0, new[] { buffer });
        interrupted = guest.Driver.WaitForInterrupt(TimeSpan.FromSeconds(5)) != GuestVirtioInterrupts.None;
        return guest.Driver.TryTakeUsed(0, out _, out uint length) ? length : uint.MaxValue;
    }

    private sealed class Script
    {
        private readonly TextWriter _transcript;

        public Script(TextWriter transcript) => _transcript = transcript;

        public int Passed { get; private set; }

        public int Failed { get; private set; }

        public void Check(string step, bool ok, string detail)
        {
            if (ok)
            {
                Passed++;
            }
            else
            {
                Failed++;
            }

            _transcript.WriteLine($"  driver    {(ok ? "ok" : "FAIL"),-4}  {step,-21} {detail}");
        }
    }
}
