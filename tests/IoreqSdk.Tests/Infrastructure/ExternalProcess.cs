using System;
using System.Collections.Generic;
using System.Diagnostics;
using NUnit.Framework;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>Runs the machine's tools (gcc, lspci) for tests that check the SDK against them.</summary>
internal static class ExternalProcess
{
    public static (int ExitCode, string Stdout, string Stderr) Run(string file, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(info)!;
        System.Threading.Tasks.Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.GetAwaiter().GetResult());
    }

    /// <summary>
    /// A tool the test needs is missing. On CI that is a failure (CI installs it); on a developer's machine the test is
    /// reported as skipped with what to install.
    /// </summary>
    public static void Unavailable(string what, string packages)
    {
        string message = $"{what}: install it with 'apt-get install {packages}' to run this test.";
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail(message);
        }

        Assert.Ignore(message);
    }
}
