using System;
using System.CommandLine;
using System.Globalization;
using System.Threading.Tasks;

namespace Demu.Serve;

/// <summary>
/// <c>demu serve</c> (the xenstore backend daemon) and <c>demu describe</c> (its helper: writes a device into the SDK's
/// xenstore namespace). Program.cs hands them their arguments; <see cref="CreateServe"/> and <see cref="CreateDescribe"/>
/// are plain subcommands, ready to be added to demu's root command.
/// </summary>
internal static class ServeCommands
{
    /// <summary>Runs <c>serve</c> or <c>describe</c> when <paramref name="args"/> starts with one; null otherwise.</summary>
    public static Task<int>? TryInvoke(string[] args, InvocationConfiguration? configuration = null)
    {
        if (args.Length == 0 || (args[0] != "serve" && args[0] != "describe"))
        {
            return null;
        }

        var root = new RootCommand("demu: Xen device models in C#") { CreateServe(), CreateDescribe() };
        return root.Parse(args).InvokeAsync(configuration ?? DemuCommand.DefaultConfiguration());
    }

    public static Command CreateServe()
    {
        var backend = BackendDomainOption();
        var once = new Option<bool>("--once") { Description = "Serve until the first device closes, then exit (for tests and scripts)." };
        var simulate = new Option<bool>("--simulate")
        {
            Description = "Run on a simulated xenstore and simulated Xen: a toolstack step adds an Arm64 guest's virtio disk (--disk, or a scratch image) "
                + "as libxl does, the service serves it, the guest reads the device, then the guest is destroyed.",
        };
        var disk = new Option<string?>("--disk") { Description = "--simulate: the image the simulated guest's virtio disk serves (default: a scratch image)." };
        var noRestrict = new Option<bool>("--no-restrict") { Description = "Real Xen: keep each device's Xen handles unrestricted (by default they are restricted to its guest once its server is up)." };
        Option<int> loopThreads = DemuCommand.LoopThreadsOption();
        var json = new Option<bool>("--json-logs") { Description = "Log as JSON lines (each carries Domain, Device, Type, State as fields) instead of one text line an event." };
        var command = new Command("serve", "Run as a xenstore backend daemon: serve the virtio disks libxl describes under backend/virtio_disk and the devices in the SDK's "
            + "backend/ioreq-sdk namespace (demu describe), each guest's devices on ioreq servers of their own, until SIGTERM.")
        {
            backend, once, simulate, disk, noRestrict, loopThreads, json,
        };
        command.SetAction(async (result, cancellation) =>
        {
            var settings = new ServeSettings(result.GetValue(backend), result.GetValue(once), result.GetValue(simulate), result.GetValue(disk), !result.GetValue(noRestrict), DemuCommand.LoopThreads(result, loopThreads), result.GetValue(json),
                result.InvocationConfiguration.Output, result.InvocationConfiguration.Error);
            return settings.Simulate ? await SimulatedServe.RunAsync(settings, cancellation).ConfigureAwait(false) : await XenServe.RunAsync(settings, cancellation).ConfigureAwait(false);
        });
        return command;
    }

    public static Command CreateDescribe()
    {
        var backend = BackendDomainOption();
        var domain = new Option<ushort>("--domain") { Description = "The guest (after xl create -p), as xl list shows it.", Required = true, CustomParser = r => (ushort)Number(r, DemuCommand.DomidFirstReserved - 1) };
        var id = new Option<uint>("--device-id") { Description = "The device's id under the guest (default 0).", CustomParser = r => (uint)Number(r, uint.MaxValue) };
        var type = new Option<string>("--type") { Description = "virtio-blk or virtio-rng.", DefaultValueFactory = _ => "virtio-rng" };
        type.AcceptOnlyFromAmong("virtio-blk", "virtio-rng");
        var transport = new Option<string>("--transport") { Description = "pci (x86 and arm64; at --bdf) or mmio (arm64; at --base with --irq).", DefaultValueFactory = _ => "pci" };
        transport.AcceptOnlyFromAmong("pci", "mmio");
        var bdf = new Option<string>("--bdf") { Description = "pci: ssss:bb:dd.f on bus 0 (default 0000:00:05.0).", DefaultValueFactory = _ => "0000:00:05.0" };
        var mmioBase = new Option<string?>("--base") { Description = "mmio: the slot's address (0x02000000 + n * 0x200 on arm64)." };
        var irq = new Option<string?>("--irq") { Description = "mmio: the slot's SPI (33 to 43 on arm64)." };
        var disk = new Option<string?>("--disk") { Description = "virtio-blk: the image's absolute path." };
        var readOnly = new Option<bool>("--read-only") { Description = "virtio-blk: serve the image read-only." };
        var noWait = new Option<bool>("--no-wait") { Description = "Do not wait (as libxl does, 10 s) for the backend to report InitWait." };
        var command = new Command("describe", "Describe a device in the SDK's xenstore namespace (for devices libxl does not know, e.g. an x86 guest's virtio-pci "
            + "device after xl create -p) and wait, as libxl does, for demu serve to report InitWait; then xl unpause.")
        {
            backend, domain, id, type, transport, bdf, mmioBase, irq, disk, readOnly, noWait,
        };
        command.SetAction(async (result, cancellation) =>
        {
            var keys = new System.Collections.Generic.Dictionary<string, string>(StringComparer.Ordinal) { ["transport"] = result.GetValue(transport)! };
            if (keys["transport"] == "pci")
            {
                keys["bdf"] = result.GetValue(bdf)!;
            }
            else
            {
                keys["base"] = result.GetValue(mmioBase) ?? string.Empty;
                keys["irq"] = result.GetValue(irq) ?? string.Empty;
            }

            if (result.GetValue(type) == "virtio-blk")
            {
                keys["params"] = result.GetValue(disk) ?? string.Empty;
                keys["mode"] = result.GetValue(readOnly) ? "r" : "w";
            }

            return await Describe.RunAsync(result.GetValue(backend), result.GetValue(domain), result.GetValue(id), result.GetValue(type)!, keys, !result.GetValue(noWait),
                result.InvocationConfiguration.Output, result.InvocationConfiguration.Error, cancellation).ConfigureAwait(false);
        });
        return command;
    }

    private static Option<ushort> BackendDomainOption() => new("--backend-domain")
    {
        Description = "The domain the backend runs in (dom0, or a driver domain): its backend/ directory is watched. Default 0.",
        CustomParser = r => (ushort)Number(r, DemuCommand.DomidFirstReserved - 1),
    };

    private static ulong Number(System.CommandLine.Parsing.ArgumentResult result, ulong maximum)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
        if (!ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong value) || value > maximum)
        {
            result.AddError(FormattableString.Invariant($"'{text}' is not a number from 0 to {maximum}."));
            return 0;
        }

        return value;
    }
}

/// <summary>What <c>demu serve</c> was asked to do.</summary>
internal sealed record ServeSettings(ushort BackendDomain, bool Once, bool Simulate, string? Disk, bool Restrict, int LoopThreads, bool JsonLogs, System.IO.TextWriter Output, System.IO.TextWriter Error);
