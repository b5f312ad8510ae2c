using System;
using System.CommandLine;
using System.IO;
using System.Threading.Tasks;
using Demu;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>demu's --help as a person reads it (issue 18 item 5): examples that work as written, and the exit codes.</summary>
[TestFixture]
public sealed class DemuHelpTests
{
    [Test]
    public async Task HelpEndsWithExamplesAndTheExitCodes()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();

        int exitCode = await DemuCommand.InvokeAsync(["--help"], new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null });

        string help = output.ToString();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero);
            Assert.That(error.ToString(), Is.Empty);
            Assert.That(help, Does.Contain("--domain <id>"), "the value an option takes is named");
            Assert.That(help.IndexOf("Examples:", StringComparison.Ordinal), Is.GreaterThan(help.IndexOf("--verbose", StringComparison.Ordinal)), "after the options");
            Assert.That(help, Does.Contain("  demu --device serial --platform arm64\n"));
            Assert.That(help, Does.Contain("Exit codes:"));
            Assert.That(help, Does.Contain($"  {DemuHelp.Success}  done"));
            Assert.That(help, Does.Contain($"  {DemuHelp.RunFailed}  the run failed"));
            Assert.That(help, Does.Contain($"  {DemuHelp.CannotRun}  nothing was served"));
        }
    }

    [Test]
    public void EveryExampleIsACommandLineDemuAccepts([ValueSource(nameof(ExampleArguments))] string arguments)
    {
        ParseResult result = DemuCommand.Create().Parse(arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.That(result.Errors, Is.Empty, $"demu {arguments}");
    }

    [Test]
    public void TheExitCodeOfABadOptionIsTheOneHelpDocumentsAndTheErrorSaysWhereToLook()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();

        int exitCode = DemuCommand.InvokeAsync(["--frobnicate"], new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null }).GetAwaiter().GetResult();

        Assert.That(exitCode, Is.EqualTo(DemuHelp.CannotRun));
        Assert.That(error.ToString(), Does.StartWith("demu: ").And.Contain("demu --help"));
    }

    [Test]
    public void AFailedXenCallSaysWhatToChange()
    {
        var taken = new IoreqSdk.Hypervisor.HypervisorException("xendevicemodel_map_io_range_to_ioreq_server", IoreqSdk.Hypervisor.Errno.EEXIST, "xendevicemodel_map_io_range_to_ioreq_server failed: already exists (errno 17).");
        var unrestrictable = new IoreqSdk.Hypervisor.HypervisorException("xenevtchn_restrict", 25, "xenevtchn_restrict failed: inappropriate ioctl for device (errno 25).");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(XenRun.Advice(taken), Does.Contain("choose another --bdf"));
            Assert.That(XenRun.Advice(unrestrictable), Does.Contain("--no-restrict"));
        }
    }

    private static string[] ExampleArguments() => Array.ConvertAll(DemuHelp.Examples, e => e.Arguments);
}
