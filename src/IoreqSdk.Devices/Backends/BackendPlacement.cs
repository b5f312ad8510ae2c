using System;
using System.Globalization;
using System.IO;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Virtio.Pci;
using IoreqSdk.Xenstore.Backend;

namespace IoreqSdk.Devices.Backends;

/// <summary>The checks every virtio backend factory shares: where a device may sit, and what may back a disk.</summary>
internal static class BackendPlacement
{
    /// <summary>
    /// Puts <paramref name="device"/> on the transport the keys name: virtio-mmio at <c>base</c> with SPI <c>irq</c> (Arm64
    /// guests: inside Xen's virtio-mmio window, 0x02000000 + 1 MiB, slot-aligned, SPIs 33–43), or virtio-pci at <c>bdf</c>.
    /// </summary>
    public static string Place(BackendDeviceRequest request, VirtioDevice device, string transport)
    {
        switch (transport)
        {
            case "mmio":
                (ulong address, uint spi) = MmioSlot(request);
                var mmio = new VirtioMmioTransport(device, address, request.Server.CreateInterruptLine(spi));
                request.Server.AddDevice(mmio);
                return FormattableString.Invariant($"virtio-mmio at 0x{address:x}, SPI {spi}");
            case "pci":
                (ushort segment, int slot, int function) = Bdf(request);
                PciPlatform platform = GuestPlatform.For(request.Architecture);
                if (platform.UnreachableSegmentReason(segment) is string unreachable)
                {
                    // The toolstack's input, refused as such (the bridge's own check would throw an argument error,
                    // which the service reports as a programming error: found by the xenstore fuzz target).
                    throw new BackendDeviceException("bdf: " + unreachable);
                }

                var pci = new VirtioPciTransport(device);
                var bridge = new PciHostBridge(request.Server, platform, segment);
                try
                {
                    bridge.AddDevice(pci, slot, function);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                    throw new BackendDeviceException("bdf: " + e.Message, e);
                }

                return FormattableString.Invariant($"virtio-pci at {segment:x4}:00:{slot:x2}.{function:x}");
            default:
                throw new BackendDeviceException($"transport '{BackendDeviceRequest.Shorten(transport)}' is not mmio or pci");
        }
    }

    /// <summary>The <c>base</c> and <c>irq</c> keys, checked against the platform's virtio-mmio window and SPI range.</summary>
    public static (ulong Address, uint Spi) MmioSlot(BackendDeviceRequest request)
    {
        if (!request.Server.Platform.HasVirtioMmioWindow)
        {
            throw new BackendDeviceException("virtio-mmio devices are served to Arm64 guests (Xen reserves their window and SPIs there); on x86 use transport pci");
        }

        ulong address = request.RequireNumber("base");
        ulong spi = request.RequireNumber("irq");
        ulong windowEnd = VirtioMmioTransport.Arm64WindowBase + VirtioMmioTransport.Arm64WindowSize;
        if (address < VirtioMmioTransport.Arm64WindowBase || address > windowEnd - VirtioMmioTransport.Size || address % VirtioMmioTransport.Size != 0)
        {
            throw new BackendDeviceException(FormattableString.Invariant(
                $"base 0x{address:x} is not a 0x{VirtioMmioTransport.Size:x}-aligned slot inside Xen's virtio-mmio window 0x{VirtioMmioTransport.Arm64WindowBase:x}-0x{windowEnd - 1:x}"));
        }

        if (spi < VirtioMmioTransport.Arm64FirstSpi || spi > VirtioMmioTransport.Arm64LastSpi)
        {
            throw new BackendDeviceException(FormattableString.Invariant(
                $"irq {spi} is outside the SPIs Xen reserves for virtio-mmio ({VirtioMmioTransport.Arm64FirstSpi}-{VirtioMmioTransport.Arm64LastSpi})"));
        }

        return (address, (uint)spi);
    }

    /// <summary>The <c>bdf</c> key as libxl writes one (<c>%04x:%02x:%02x.%01x</c>); the host bridge has bus 0 only.</summary>
    public static (ushort Segment, int Slot, int Function) Bdf(BackendDeviceRequest request)
    {
        string text = request.Require("bdf");
        string[] parts = text.Split(':', '.');
        if (parts.Length != 4 || parts[0].Length != 4 || parts[1].Length != 2 || parts[2].Length != 2 || parts[3].Length != 1
            || !ushort.TryParse(parts[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ushort segment)
            || !byte.TryParse(parts[1], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte bus)
            || !byte.TryParse(parts[2], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte slot)
            || !byte.TryParse(parts[3], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte function))
        {
            throw new BackendDeviceException($"bdf '{BackendDeviceRequest.Shorten(text)}' is not ssss:bb:dd.f");
        }

        if (bus != 0 || slot > 31 || function > 7)
        {
            throw new BackendDeviceException($"bdf {text}: the host bridge serves bus 00, devices 00-1f, functions 0-7");
        }

        return (segment, slot, function);
    }

    /// <summary>
    /// The <c>params</c> and <c>mode</c> keys of a disk: an absolute path to an existing file, to be opened writable for
    /// <c>w</c>, read-only for <c>r</c>. What the file is (a FIFO, a socket: it does not seek) the image's own open tells
    /// (<see cref="OpenImageFailed"/>).
    /// </summary>
    public static (string Path, bool ReadOnly) Disk(BackendDeviceRequest request)
    {
        string path = request.Require("params");
        string mode = request.Require("mode");
        if (mode is not ("w" or "r"))
        {
            throw new BackendDeviceException($"mode '{BackendDeviceRequest.Shorten(mode)}' is not w or r");
        }

        if (!Path.IsPathRooted(path))
        {
            throw new BackendDeviceException($"params '{BackendDeviceRequest.Shorten(path)}' is not an absolute path");
        }

        if (Directory.Exists(path) || !File.Exists(path))
        {
            throw new BackendDeviceException($"params '{BackendDeviceRequest.Shorten(path)}' does not exist or is not a regular file");
        }

        return (path, mode == "r");
    }

    /// <summary>
    /// The refusal for a disk whose image did not open: a FIFO or a socket (which the image's open refuses without
    /// blocking, where a FileStream's waited for a writer: the service's loop hung on one, found by the xenstore fuzz
    /// target), a directory, a file it may not open so.
    /// </summary>
    public static BackendDeviceException OpenImageFailed(string path, Exception error) =>
        new($"params '{BackendDeviceRequest.Shorten(path)}' cannot be opened: {error.Message}", error);
}
