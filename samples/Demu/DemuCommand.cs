using System;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Threading;
using System.Threading.Tasks;
using Demu.Devices;
using Demu.Simulation;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;

namespace Demu;

/// <summary>The command line: which device, which platform, which guest.</summary>
internal static class DemuCommand
{
    public static RootCommand Create()
    {
        var device = new Option<string>("--device", "-d")
        {
            Description = "The device to emulate: edu (QEMU's educational device) or serial (a PCI 16550A UART).",
            DefaultValueFactory = _ => "edu",
        };
        device.AcceptOnlyFromAmong("edu", "serial");

        var platform = new Option<string>("--platform", "-p")
        {
            Description = "The guest's architecture: x86 (HVM) or arm64.",
            DefaultValueFactory = _ => "x86",
        };
        platform.AcceptOnlyFromAmong("x86", "arm64");

        var domain = new Option<ushort?>("--domain")
        {
            Description = "Serve this guest domain on real Xen (run in dom0 as root). Without it, demu runs on its built-in simulated guest.",
        };

        var bdf = new Option<PciSbdf>("--bdf")
        {
            Description = "The function's PCI address, [ssss:]bb:dd.f (on x86 QEMU owns 00:00.0 and its own slots; pick a free one).",
            DefaultValueFactory = _ => new PciSbdf(0, 0, 5, 0),
            CustomParser = ParseSbdf,
        };

        var ecamBase = HexOption("--ecam-base", "Arm64: the host bridge's ECAM window base.", Arm64Platform.DefaultEcamBase);
        var mmioBase = HexOption("--mmio-base", "Arm64: the 32-bit MMIO window base.", Arm64Platform.DefaultMemoryWindow.Base);
        var mmioSize = HexOption("--mmio-size", "Arm64: the 32-bit MMIO window size.", Arm64Platform.DefaultMemoryWindow.Size);
        var prefetchBase = HexOption("--prefetch-base", "Arm64: the 64-bit prefetchable MMIO window base.", Arm64Platform.DefaultPrefetchableWindow.Base);
        var prefetchSize = HexOption("--prefetch-size", "Arm64: the 64-bit prefetchable MMIO window size.", Arm64Platform.DefaultPrefetchableWindow.Size);
        var pioBase = HexOption("--pio-base", "Arm64: the PIO aperture (the MMIO window that carries I/O BARs) base.", Arm64Platform.DefaultPioAperture.Base);
        var spiBase = new Option<uint>("--intx-spi-base")
        {
            Description = "Arm64: the SPI that INTA of device 0 raises (the others follow the standard swizzle).",
            DefaultValueFactory = _ => 44,
        };

        var eduDmaBits = new Option<int>("--edu-dma-bits")
        {
            Description = "edu: how many address bits its DMA engine drives (QEMU's dma_mask property). Default: 28 on x86 "
                + "(QEMU's), 40 on arm64, where a Xen guest's RAM starts at 1 GiB (GUEST_RAM0_BASE), beyond 28 bits.",
        };
        eduDmaBits.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 1 or > 64)
            {
                result.AddError("--edu-dma-bits: an address width of 1 to 64 bits.");
            }
        });

        var serialOutput = new Option<string?>("--serial-output")
        {
            Description = "serial: where the guest's transmitted bytes go (a file or a pty path); standard output by default.",
        };

        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log the ioreq server's life cycle to standard error." };

        var deviceTree = new Option<bool>("--device-tree")
        {
            Description = "Arm64: print the device-tree node that describes the host bridge to the guest (for the toolstack), then exit.",
        };

        var root = new RootCommand(
            "demu: one emulated PCI device for one Xen guest, written with IoreqSdk. With no --domain it runs on a "
            + "simulated guest that enumerates the bus and drives the device, then prints what it saw.")
        {
            device, platform, domain, bdf, ecamBase, mmioBase, mmioSize, prefetchBase, prefetchSize, pioBase, spiBase, eduDmaBits, serialOutput, verbose, deviceTree,
        };

        root.SetAction(async (ParseResult result, CancellationToken cancellation) =>
        {
            var architecture = result.GetValue(platform) == "arm64" ? GuestArchitecture.Arm64 : GuestArchitecture.X86;
            var settings = new DemuSettings
            {
                Device = result.GetValue(device) == "serial" ? DeviceKind.Serial : DeviceKind.Edu,
                Architecture = architecture,
                Domain = result.GetValue(domain),
                Address = result.GetValue(bdf),
                Arm64 = new Arm64Platform
                {
                    EcamBase = Hex(result, ecamBase, Arm64Platform.DefaultEcamBase),
                    Memory = new PciWindow(Hex(result, mmioBase, Arm64Platform.DefaultMemoryWindow.Base), Hex(result, mmioSize, Arm64Platform.DefaultMemoryWindow.Size)),
                    Prefetchable = new PciWindow(Hex(result, prefetchBase, Arm64Platform.DefaultPrefetchableWindow.Base), Hex(result, prefetchSize, Arm64Platform.DefaultPrefetchableWindow.Size)),
                    PioAperture = new PciWindow(Hex(result, pioBase, Arm64Platform.DefaultPioAperture.Base), Arm64Platform.DefaultPioAperture.Size),
                    IntxSpiBase = result.GetValue(spiBase),
                },
                EduDmaAddressBits = result.GetResult(eduDmaBits) is null
                    ? (architecture == GuestArchitecture.Arm64 ? EduDevice.Arm64GuestDmaAddressBits : EduDevice.DefaultDmaAddressBits)
                    : result.GetValue(eduDmaBits),
                SerialOutput = result.GetValue(serialOutput),
                Verbose = result.GetValue(verbose),
                Out = result.InvocationConfiguration.Output,
                Error = result.InvocationConfiguration.Error,
            };

            if (result.GetValue(deviceTree))
            {
                return DeviceTree.Print(settings);
            }

            return settings.Domain is null
                ? SimulatedRun.Run(settings)
                : await XenRun.RunAsync(settings, cancellation).ConfigureAwait(false);
        });

        return root;
    }

    // No DefaultValueFactory: help would print the default in decimal. The description carries it in hexadecimal and
    // Hex() applies it when the option is absent.
    private static Option<ulong> HexOption(string name, string description, ulong defaultValue) => new(name)
    {
        Description = FormattableString.Invariant($"{description} Hexadecimal with 0x, or decimal (default 0x{defaultValue:x})."),
        CustomParser = result =>
        {
            string text = result.Tokens[0].Value;
            bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong value)
                : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
            if (!ok)
            {
                result.AddError($"{name}: '{text}' is not a number (write hexadecimal as 0x...).");
            }

            return value;
        },
    };

    private static ulong Hex(ParseResult result, Option<ulong> option, ulong defaultValue) =>
        result.GetResult(option) is null ? defaultValue : result.GetValue(option);

    private static PciSbdf ParseSbdf(ArgumentResult result)
    {
        string text = result.Tokens[0].Value;
        if (!PciSbdf.TryParse(text, out PciSbdf value))
        {
            result.AddError($"--bdf: '{text}' is not a PCI address; write it as bb:dd.f or ssss:bb:dd.f, e.g. 00:05.0.");
        }
        else if (value.Bus != 0)
        {
            result.AddError("--bdf: a demu host bridge has one bus; put the function on bus 0.");
        }

        return value;
    }
}
