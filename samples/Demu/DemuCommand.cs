using System;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Demu.Simulation;
using IoreqSdk.Abi;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;

namespace Demu;

/// <summary>The command line: which device, which platform, which guest.</summary>
internal static class DemuCommand
{
    /// <summary><c>DOMID_FIRST_RESERVED</c> (xen/include/public/xen.h).</summary>
    public const int DomidFirstReserved = 0x7FF0;

    /// <summary>What <c>--loop-threads</c> says: one when it is not given.</summary>
    internal static int LoopThreads(ParseResult result, Option<int> option) => result.GetResult(option) is null ? 1 : result.GetValue(option);

    /// <summary>
    /// <c>--loop-threads</c>, for a real-Xen run and for <c>demu serve</c>: how many threads serve each server's vCPUs
    /// (IoreqServerOptions.LoopThreads), checked where it is parsed.
    /// </summary>
    internal static Option<int> LoopThreadsOption() => new("--loop-threads")
    {
        HelpName = "count",
        Description = "How many threads serve each ioreq server's vCPUs (1 to " + IoreqServerOptions.MaxLoopThreads.ToString(CultureInfo.InvariantCulture)
            + "; default 1; at most one a vCPU is started). vCPU n is served by thread n % count; requests to devices that are not "
            + "thread-safe are still served by the first, the event loop.",
        CustomParser = result =>
        {
            string text = result.Tokens[0].Value;
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count < 1 || count > IoreqServerOptions.MaxLoopThreads)
            {
                result.AddError(FormattableString.Invariant($"--loop-threads: '{text}' is not a thread count; give 1 to {IoreqServerOptions.MaxLoopThreads}."));
                return 1;
            }

            return count;
        },
    };

    /// <summary>
    /// Parses and runs. Every configuration error — a parse error or a rule the settings break — is one line on
    /// standard error, "demu: option: rule", and exit code 2 (System.CommandLine would print the whole help and exit 1).
    /// </summary>
    public static async Task<int> InvokeAsync(string[] args, InvocationConfiguration? configuration = null)
    {
        configuration ??= DefaultConfiguration();

        ParseResult result = Create().Parse(args);
        if (result.Errors.Count > 0)
        {
            foreach (ParseError error in result.Errors)
            {
                // demu's own parsers start their messages with the option; System.CommandLine's do not, so name it.
                // Some of its messages span lines (a list of allowed values): one line each.
                string message = string.Join(" ", error.Message.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries));
                Option? option = error.SymbolResult switch
                {
                    OptionResult o => o.Option,
                    ArgumentResult { Parent: OptionResult o } => o.Option,
                    _ => null,
                };
                if (!message.StartsWith("--", StringComparison.Ordinal))
                {
                    message = option is null ? $"{message} (demu --help lists the options)" : $"{option.Name}: {message}";
                }

                configuration.Error.WriteLine($"demu: {message}");
            }

            return DemuHelp.CannotRun;
        }

        return await result.InvokeAsync(configuration).ConfigureAwait(false);
    }

    /// <summary>How demu runs from its Main.</summary>
    public static InvocationConfiguration DefaultConfiguration() => new()
    {
        // demu tears down on SIGINT/SIGTERM itself (XenRun, Teardown): System.CommandLine's handler would give the
        // action 2 s and then return, letting the process exit with its ioreq server still claiming the guest's ranges.
        ProcessTerminationTimeout = null,
    };

    public static RootCommand Create()
    {
        var device = new Option<string>("--device", "-d")
        {
            Description = "The device to emulate: edu (QEMU's educational device), serial (a PCI 16550A UART), or a virtio device — "
                + "virtio-blk (a disk over --disk), virtio-rng (an entropy source), virtio-console (a console on standard input and output) — over --transport.",
            DefaultValueFactory = _ => "edu",
        };
        device.AcceptOnlyFromAmong("edu", "serial", "virtio-rng", "virtio-blk", "virtio-console");

        var transport = new Option<string?>("--transport")
        {
            Description = "virtio: mmio (a platform device; Xen's first virtio-mmio slot on arm64, where the toolstack puts its virtio disks) "
                + "or pci (a function at --bdf behind the host bridge; MSI-X on x86). Default: mmio on arm64, pci on x86.",
        };
        transport.AcceptOnlyFromAmong("mmio", "pci");

        var disk = new Option<string?>("--disk")
        {
            HelpName = "file",
            Description = "virtio-blk: the raw image file to serve (its whole 512-byte sectors are the disk). On the simulated guest the scripted "
                + "driver WRITES test patterns into it (give a scratch copy, or --read-only); without --disk it uses a scratch image of its own.",
        };

        var readOnly = new Option<bool>("--read-only") { Description = "virtio-blk: serve the image read-only (the guest sees VIRTIO_BLK_F_RO)." };

        var virtioMmioBase = new Option<ulong?>("--virtio-mmio-base")
        {
            HelpName = "address",
            Description = "virtio over mmio: the register block's guest address, a multiple of 0x200 (default: 0x2000000, libxl's first slot, on arm64; 0xfeb00000 on x86).",
            CustomParser = result => ParseNumber(result, "--virtio-mmio-base", ulong.MaxValue),
        };

        var virtioMmioIrq = new Option<uint?>("--virtio-mmio-irq")
        {
            HelpName = "line",
            Description = "virtio over mmio: its interrupt line, an SPI on arm64 (default 33, libxl's first) or an ISA IRQ on x86 (default 5).",
            CustomParser = result => (uint)ParseNumber(result, "--virtio-mmio-irq", uint.MaxValue),
        };

        var platform = new Option<string>("--platform", "-p")
        {
            Description = "The guest's architecture: x86 (HVM) or arm64.",
            DefaultValueFactory = _ => "x86",
        };
        platform.AcceptOnlyFromAmong("x86", "arm64");

        var domain = new Option<ushort?>("--domain")
        {
            HelpName = "id",
            Description = "Serve this guest domain (1 to 32751, as xl list shows it) on real Xen (run in dom0 as root). Without it, demu runs on its built-in simulated guest.",
            CustomParser = ParseDomain,
        };

        var noRestrict = new Option<bool>("--no-restrict")
        {
            Description = "Real Xen: keep the Xen handles unrestricted. By default, once the ioreq server is up, demu restricts its "
                + "handles to --domain (xendevicemodel/xenforeignmemory/xenevtchn_restrict), so a device model taken over by its guest "
                + "cannot reach any other domain through them.",
        };

        var bdf = new Option<PciSbdf>("--bdf")
        {
            HelpName = "[ssss:]bb:dd.f",
            Description = "The function's PCI address, [ssss:]bb:dd.f, on bus 0 (on x86: segment 0, and QEMU owns 00:00.0 and its own slots; pick a free one).",
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
            HelpName = "spi",
            Description = "Arm64: the SPI that INTA of device 0 raises (the others follow the standard swizzle); it and the next "
                + "three must be SPIs (32 to 1019).",
            DefaultValueFactory = _ => 44,
            CustomParser = result => (uint)ParseNumber(result, "--intx-spi-base", uint.MaxValue),
        };

        var eduDmaBits = new Option<int>("--edu-dma-bits")
        {
            HelpName = "bits",
            Description = "edu: how many address bits its DMA engine drives (QEMU's dma_mask property). Default: 28 on x86 "
                + "(QEMU's), 40 on arm64, where a Xen guest's RAM starts at 1 GiB (GUEST_RAM0_BASE), beyond 28 bits.",
            CustomParser = result =>
            {
                string text = result.Tokens[0].Value;
                if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int bits) || bits is < 1 or > 64)
                {
                    result.AddError($"--edu-dma-bits: '{text}' is not an address width; give 1 to 64 bits.");
                }

                return bits;
            },
        };

        var busyPoll = new Option<int>("--busy-poll")
        {
            HelpName = "microseconds",
            Description = "Real Xen: how long the event loop spins on the vCPUs' slots after each request before it sleeps (0 to "
                + "1000000; default 0, never). Lower latency for a guest that sends requests in bursts, at the price of a CPU kept "
                + "busy while it does.",
            CustomParser = result =>
            {
                string text = result.Tokens[0].Value;
                if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int microseconds) || microseconds > 1_000_000)
                {
                    result.AddError($"--busy-poll: '{text}' is not a time to spin; give 0 to 1000000 microseconds.");
                }

                return microseconds;
            },
        };

        Option<int> loopThreads = LoopThreadsOption();

        var serialOutput = new Option<string?>("--serial-output")
        {
            HelpName = "file",
            Description = "serial: where the guest's transmitted bytes go (a file or a pty path); standard output by default.",
        };

        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log the ioreq server's life cycle to standard error." };

        var deviceTree = new Option<bool>("--device-tree")
        {
            Description = "Arm64: print the device-tree node that describes the host bridge (or the virtio-mmio device) to the guest (for the toolstack), then exit.",
        };

        var root = new RootCommand(
            "demu: one emulated device for one Xen guest, written with IoreqSdk. With no --domain it runs on a "
            + "simulated guest that finds the device (enumerating the bus, or probing virtio-mmio) and drives it, then prints what it saw.")
        {
            device, transport, disk, readOnly, virtioMmioBase, virtioMmioIrq, platform, domain, noRestrict, bdf, ecamBase, mmioBase, mmioSize, prefetchBase, prefetchSize, pioBase, spiBase, eduDmaBits, busyPoll, loopThreads, serialOutput, verbose, deviceTree,
        };

        // demu serve (the xenstore backend daemon) and demu describe (its helper), listed in --help as subcommands.
        root.Subcommands.Add(Serve.ServeCommands.CreateServe());
        root.Subcommands.Add(Serve.ServeCommands.CreateDescribe());

        root.SetAction(async (ParseResult result, CancellationToken cancellation) =>
        {
            DemuSettings settings;
            try
            {
                settings = Settings(result);
            }
            catch (UsageException e)
            {
                result.InvocationConfiguration.Error.WriteLine($"demu: {e.Option}: {e.Message}");
                return 2;
            }

            if (result.GetValue(deviceTree))
            {
                return DeviceTree.Print(settings);
            }

            return settings.Domain is null
                ? SimulatedRun.Run(settings)
                : await XenRun.RunAsync(settings, cancellation).ConfigureAwait(false);
        });

        DemuSettings Settings(ParseResult result)
        {
            var architecture = result.GetValue(platform) == "arm64" ? GuestArchitecture.Arm64 : GuestArchitecture.X86;
            var kind = result.GetValue(device) switch
            {
                "serial" => DeviceKind.Serial,
                "virtio-rng" => DeviceKind.VirtioRng,
                "virtio-blk" => DeviceKind.VirtioBlk,
                "virtio-console" => DeviceKind.VirtioConsole,
                _ => DeviceKind.Edu,
            };
            PciSbdf address = result.GetValue(bdf);

            // An option that the chosen platform, device or run would ignore is a mistake to report, not to skip.
            if (architecture == GuestArchitecture.X86)
            {
                foreach (Option option in new Option[] { ecamBase, mmioBase, mmioSize, prefetchBase, prefetchSize, pioBase, spiBase })
                {
                    if (result.GetResult(option) is { Implicit: false })
                    {
                        throw new UsageException(option.Name, "is an Arm64 option (x86 guests have no ECAM window, memory windows, PIO aperture or SPIs to place); add --platform arm64 or drop it.");
                    }
                }

                if (address.Segment != 0)
                {
                    throw new UsageException("--bdf", $"{address}: an x86 guest reaches PCI segment 0 only (Xen decodes 0xCF8/0xCFC); write bb:dd.f or 0000:bb:dd.f.");
                }
            }

            bool isVirtio = kind is DeviceKind.VirtioRng or DeviceKind.VirtioBlk or DeviceKind.VirtioConsole;
            VirtioTransport carrier = result.GetValue(transport) switch
            {
                "mmio" => VirtioTransport.Mmio,
                "pci" => VirtioTransport.Pci,
                _ => architecture == GuestArchitecture.Arm64 ? VirtioTransport.Mmio : VirtioTransport.Pci,
            };
            if (!isVirtio)
            {
                foreach (Option option in new Option[] { transport, disk, readOnly, virtioMmioBase, virtioMmioIrq })
                {
                    if (result.GetResult(option) is { Implicit: false })
                    {
                        throw new UsageException(option.Name, "configures a virtio device; drop it or add --device virtio-blk, virtio-rng or virtio-console.");
                    }
                }
            }
            else if (carrier == VirtioTransport.Mmio)
            {
                // A virtio-mmio device is a platform device: no function address, no host bridge to place.
                foreach (Option option in new Option[] { bdf, ecamBase, mmioBase, mmioSize, prefetchBase, prefetchSize, pioBase, spiBase })
                {
                    if (result.GetResult(option) is { Implicit: false })
                    {
                        throw new UsageException(option.Name, "places a PCI function or its host bridge; over virtio-mmio the device is a platform device with neither. Drop it, or add --transport pci.");
                    }
                }
            }
            else
            {
                foreach (Option option in new Option[] { virtioMmioBase, virtioMmioIrq })
                {
                    if (result.GetResult(option) is { Implicit: false })
                    {
                        throw new UsageException(option.Name, "places a virtio-mmio device; over virtio-pci the bridge places the function. Drop it, or add --transport mmio.");
                    }
                }
            }

            if (kind != DeviceKind.VirtioBlk)
            {
                foreach (Option option in new Option[] { disk, readOnly })
                {
                    if (result.GetResult(option) is { Implicit: false })
                    {
                        throw new UsageException(option.Name, "configures the virtio-blk disk; drop it or add --device virtio-blk.");
                    }
                }
            }

            string? image = result.GetValue(disk);
            if (kind == DeviceKind.VirtioBlk)
            {
                if (image is null && result.GetValue(domain) is not null)
                {
                    throw new UsageException("--disk", "virtio-blk on real Xen serves an image file; give its path (create one with truncate -s 64M disk.img).");
                }

                if (image is not null)
                {
                    CheckDisk(image, result.GetValue(readOnly));
                }
            }

            (ulong defaultMmioBase, uint defaultMmioLine) = DemuSettings.DefaultVirtioMmio(architecture);
            ulong mmioAt = result.GetValue(virtioMmioBase) ?? defaultMmioBase;
            uint mmioLine = result.GetValue(virtioMmioIrq) ?? defaultMmioLine;
            if (isVirtio && carrier == VirtioTransport.Mmio)
            {
                if (mmioAt % IoreqSdk.Virtio.Mmio.VirtioMmioTransport.Size != 0)
                {
                    throw new UsageException("--virtio-mmio-base", FormattableString.Invariant($"0x{mmioAt:x} is not a multiple of 0x200 (a virtio-mmio register block's size)."));
                }

                if (architecture == GuestArchitecture.Arm64 ? mmioLine is < 32 or > 1019 : mmioLine > 15)
                {
                    throw new UsageException("--virtio-mmio-irq", architecture == GuestArchitecture.Arm64
                        ? $"{mmioLine} is not an SPI (32 to 1019); Xen 4.17 gives a guest the SPIs libxl counted for its virtio disks, from 33."
                        : $"{mmioLine} is not an ISA IRQ (0 to 15).");
                }
            }

            if (kind != DeviceKind.Edu && result.GetResult(eduDmaBits) is not null)
            {
                throw new UsageException("--edu-dma-bits", "configures the edu device; drop it or add --device edu.");
            }

            string? serialPath = result.GetValue(serialOutput);
            if (serialPath is not null)
            {
                if (kind != DeviceKind.Serial)
                {
                    throw new UsageException("--serial-output", "is where the serial device's output goes; drop it or add --device serial.");
                }

                CheckWritable(serialPath);
            }

            ushort? guest = result.GetValue(domain);
            if (guest is null && result.GetValue(noRestrict))
            {
                throw new UsageException("--no-restrict", "applies to a run on real Xen; add --domain or drop it.");
            }

            if (guest is null && result.GetResult(busyPoll) is not null)
            {
                throw new UsageException("--busy-poll", "applies to a run on real Xen; add --domain or drop it.");
            }

            if (guest is null && result.GetResult(loopThreads) is not null)
            {
                throw new UsageException("--loop-threads", "applies to a run on real Xen; add --domain or drop it.");
            }

            int threads = LoopThreads(result, loopThreads);

            return new DemuSettings
            {
                Device = kind,
                Transport = carrier,
                Disk = image,
                ReadOnly = result.GetValue(readOnly),
                VirtioMmioBase = mmioAt,
                VirtioMmioLine = mmioLine,
                Architecture = architecture,
                Domain = guest,
                Restrict = !result.GetValue(noRestrict),
                Address = address,
                Arm64 = architecture == GuestArchitecture.Arm64 ? Arm64Layout(result) : new Arm64Platform(),
                EduDmaAddressBits = result.GetResult(eduDmaBits) is null
                    ? (architecture == GuestArchitecture.Arm64 ? EduDevice.Arm64GuestDmaAddressBits : EduDevice.DefaultDmaAddressBits)
                    : result.GetValue(eduDmaBits),
                SerialOutput = serialPath,
                BusyPoll = TimeSpan.FromMicroseconds(result.GetValue(busyPoll)),
                LoopThreads = threads,
                Verbose = result.GetValue(verbose),
                Out = result.InvocationConfiguration.Output,
                Error = result.InvocationConfiguration.Error,
            };
        }

        // The Arm64 host bridge's layout, checked by the SDK's own rules (Arm64Platform's properties and Validate), so
        // demu and a library user get the same answer; demu only names the option behind the property.
        Arm64Platform Arm64Layout(ParseResult result)
        {
            PciWindow memory = Window(result, mmioBase, mmioSize, Arm64Platform.DefaultMemoryWindow);
            PciWindow prefetchable = Window(result, prefetchBase, prefetchSize, Arm64Platform.DefaultPrefetchableWindow);
            PciWindow pio = Window(result, pioBase, null, Arm64Platform.DefaultPioAperture);
            try
            {
                var arm = new Arm64Platform
                {
                    EcamBase = Hex(result, ecamBase, Arm64Platform.DefaultEcamBase),
                    Memory = memory,
                    Prefetchable = prefetchable,
                    PioAperture = pio,
                    IntxSpiBase = result.GetValue(spiBase),
                };
                arm.Validate();
                return arm;
            }
            catch (ArgumentException e)
            {
                string option = e.ParamName switch
                {
                    nameof(Arm64Platform.EcamBase) or nameof(Arm64Platform.BusCount) => "--ecam-base",
                    nameof(Arm64Platform.Memory) => "--mmio-base/--mmio-size",
                    nameof(Arm64Platform.Prefetchable) => "--prefetch-base/--prefetch-size",
                    nameof(Arm64Platform.PioAperture) => "--pio-base",
                    nameof(Arm64Platform.IntxSpiBase) => "--intx-spi-base",
                    _ => "--platform arm64",
                };
                throw new UsageException(option, WithoutParameterName(e));
            }
        }

        DemuHelp.Install(root);
        return root;
    }

    // No DefaultValueFactory: help would print the default in decimal. The description carries it in hexadecimal and
    // Hex() applies it when the option is absent.
    private static Option<ulong> HexOption(string name, string description, ulong defaultValue) => new(name)
    {
        HelpName = name.EndsWith("-size", StringComparison.Ordinal) ? "bytes" : "address",
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

    private static PciWindow Window(ParseResult result, Option<ulong> baseOption, Option<ulong>? sizeOption, PciWindow defaults)
    {
        ulong start = Hex(result, baseOption, defaults.Base);
        ulong size = sizeOption is null ? defaults.Size : Hex(result, sizeOption, defaults.Size);
        if (size == 0 || start + (size - 1) < start)
        {
            throw new UsageException(
                sizeOption is null ? baseOption.Name : $"{baseOption.Name}/{sizeOption.Name}",
                FormattableString.Invariant($"a window of 0x{size:x} bytes at 0x{start:x} is empty or wraps past 2^64; give a non-zero size that ends below 2^64."));
        }

        return new PciWindow(start, size);
    }

    // ArgumentException appends " (Parameter 'name')" to the message; demu names the option instead.
    private static string WithoutParameterName(ArgumentException e)
    {
        string text = e.Message;
        int at = e.ParamName is null ? -1 : text.LastIndexOf($" (Parameter '{e.ParamName}')", StringComparison.Ordinal);
        return at < 0 ? text : text.Substring(0, at);
    }

    /// <summary>The image must be one virtio-blk can serve: checked by opening it as the run will (the SDK says what is wrong).</summary>
    private static void CheckDisk(string path, bool readOnly)
    {
        try
        {
            using (IoreqSdk.Devices.Virtio.Blk.VirtioBlkDevice.Open(path, new IoreqSdk.Devices.Virtio.Blk.VirtioBlkOptions { ReadOnly = readOnly }))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            string reason = e is ArgumentException argument ? WithoutParameterName(argument) : e.Message;
            throw new UsageException("--disk", $"cannot serve '{path}': {reason}{(e is UnauthorizedAccessException && !readOnly ? " (add --read-only to serve it read-only)" : string.Empty)}");
        }
    }

    private static void CheckWritable(string path)
    {
        try
        {
            // Opened for appending, as the run will: the file (or pty) must exist or be creatable, and be writable.
            using (File.Open(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException("--serial-output", $"cannot open '{path}' for writing: {e.Message}");
        }
    }

    /// <summary>A decimal or 0x-hexadecimal number up to <paramref name="maximum"/>; an error (and 0) otherwise.</summary>
    private static ulong ParseNumber(ArgumentResult result, string name, ulong maximum)
    {
        string text = result.Tokens[0].Value;
        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong value)
            : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        if (!ok || value > maximum)
        {
            result.AddError(FormattableString.Invariant($"{name}: '{text}' is not a number from 0 to {maximum} (decimal, or hexadecimal as 0x...)."));
            return 0;
        }

        return value;
    }

    private static ushort? ParseDomain(ArgumentResult result)
    {
        // Guests are domains 1 to DOMID_FIRST_RESERVED - 1: 0 is dom0 (demu serves guests, never its own domain), and
        // DOMID_FIRST_RESERVED (0x7FF0) and up are Xen's reserved ids (DOMID_SELF, DOMID_IO, DOMID_XEN, ...).
        string text = result.Tokens[0].Value;
        bool ok = ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong value);
        if (!ok || value is 0 or >= DomidFirstReserved)
        {
            result.AddError(FormattableString.Invariant(
                $"--domain: '{text}' is not a guest's domain id; give 1 to {DomidFirstReserved - 1} (0 is dom0, {DomidFirstReserved} and up are reserved), as xl list shows it."));
            return null;
        }

        return (ushort)value;
    }

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

/// <summary>A configuration error: the option (or options) at fault and the rule, said so the user knows what to change.</summary>
internal sealed class UsageException : Exception
{
    public UsageException(string option, string message)
        : base(message) => Option = option;

    public string Option { get; }
}
