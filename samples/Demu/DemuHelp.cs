using System;
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Linq;

namespace Demu;

/// <summary>
/// What demu's --help adds to System.CommandLine's option list: examples a person can copy, and what each exit code
/// means (scripts and systemd units act on them).
/// </summary>
internal static class DemuHelp
{
    /// <summary>The exit codes, as <see cref="DemuCommand"/>, XenRun and the simulated runs return them.</summary>
    public const int Success = 0, RunFailed = 1, CannotRun = 2;

    /// <summary>Each example's command line after "demu" (tests parse every one) and what it does.</summary>
    public static readonly (string Arguments, string What)[] Examples =
    [
        ("", "edu on a simulated x86 guest: its driver exercises the device, demu prints what the guest saw"),
        ("--device serial --platform arm64", "the PCI 16550A on a simulated Arm64 guest, its I/O BAR through the PIO aperture"),
        ("--device virtio-blk --disk scratch.img", "virtio-blk over virtio-pci on a simulated guest (it WRITES test patterns into scratch.img)"),
        ("--device virtio-rng --platform arm64 --device-tree", "print the device-tree node of a virtio-mmio device in Xen's first slot, then exit"),
        ("--domain 5", "serve edu at 00:05.0 to guest 5 on real Xen (in dom0, as root) until Ctrl-C or the guest's end"),
        ("--domain 5 --platform arm64 --device virtio-blk --disk /srv/guest5.img", "serve a disk to an Arm64 guest over virtio-mmio, where libxl puts virtio disks"),
    ];

    private static readonly string[] ExitCodes =
    [
        $"{Success}  done: the simulated guest saw what it should; or, on real Xen, stopped by a signal or the guest's end, the ioreq server destroyed",
        $"{RunFailed}  the run failed: a check of the simulated guest failed, a Xen call failed, the handles could not be restricted, or the event loop had to be abandoned (the ioreq server is destroyed even then)",
        $"{CannotRun}  nothing was served: an option is wrong, or what it asks cannot run here (no Xen, a --platform that is not the host's, a taken PCI slot); the message says what to change",
    ];

    /// <summary>Makes the root command's --help end with the examples and the exit codes.</summary>
    public static void Install(RootCommand root)
    {
        HelpOption help = root.Options.OfType<HelpOption>().Single();
        help.Action = new WithExamples((HelpAction)help.Action!);
    }

    private sealed class WithExamples(HelpAction standard) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            int result = standard.Invoke(parseResult);
            if (parseResult.CommandResult.Command is not RootCommand)
            {
                return result;   // a subcommand's help is its own
            }

            var output = parseResult.InvocationConfiguration.Output;
            output.WriteLine("Examples:");
            foreach ((string arguments, string what) in Examples)
            {
                output.WriteLine($"  demu {arguments}".TrimEnd());
                output.WriteLine($"      {what}");
            }

            output.WriteLine();
            output.WriteLine("Exit codes:");
            foreach (string code in ExitCodes)
            {
                output.WriteLine($"  {code}");
            }

            output.WriteLine();
            output.WriteLine("Real Xen: docs/real-xen.md. Writing a device: docs/getting-started.md.");
            return result;
        }
    }
}
