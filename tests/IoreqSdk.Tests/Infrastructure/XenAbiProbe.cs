using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using NUnit.Framework;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>
/// Builds and runs <c>tests/abi/xen_abi_probe.c</c> against the machine's Xen headers (Debian <c>libxen-dev</c>).
/// The program is compiled once per test process.
/// </summary>
internal static class XenAbiProbe
{
    private static readonly Lazy<string> s_executable = new(Build);

    /// <summary>Runs the probe and returns its standard output.</summary>
    public static string Run(params string[] arguments)
    {
        string exe = s_executable.Value;
        (int exitCode, string stdout, string stderr) = ExternalProcess.Run(exe, arguments);
        Assert.That(exitCode, Is.Zero, $"xen_abi_probe {string.Join(" ", arguments)} failed: {stderr}");
        return stdout;
    }

    /// <summary>Parses the <c>name=value</c> lines of <c>xen_abi_probe layout</c>.</summary>
    public static IReadOnlyDictionary<string, ulong> Layout()
    {
        var values = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (string line in Run("layout").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = line.LastIndexOf('=');
            values.Add(line[..eq], ulong.Parse(line.AsSpan(eq + 1), CultureInfo.InvariantCulture));
        }

        return values;
    }

    private static string Build()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "abi", "xen_abi_probe.c");
        string outputDirectory = Path.Combine(Path.GetTempPath(), "ioreqsdk-abi-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(outputDirectory);
        string exe = Path.Combine(outputDirectory, "xen_abi_probe");

        (int exitCode, string stdout, string stderr) result;
        try
        {
            // gnu11: Xen's public headers use anonymous unions, a GNU extension in C11.
            result = ExternalProcess.Run("gcc", ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", exe, source]);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            ExternalProcess.Unavailable($"gcc could not be started ({e.Message})", "gcc libxen-dev");
            throw;
        }

        if (result.exitCode != 0)
        {
            if (result.stderr.Contains("No such file or directory", StringComparison.Ordinal) && result.stderr.Contains("xen", StringComparison.Ordinal))
            {
                ExternalProcess.Unavailable("Xen's public headers are missing", "gcc libxen-dev");
            }

            Assert.Fail($"xen_abi_probe.c does not compile against this machine's Xen headers:\n{result.stderr}{result.stdout}");
        }

        return exe;
    }
}
