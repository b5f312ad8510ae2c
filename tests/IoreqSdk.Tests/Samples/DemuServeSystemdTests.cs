using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Demu;
using IoreqSdk.Tests.Hosting;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>
/// <c>demu serve</c> as systemd runs it (issue 18): Microsoft.Extensions.Hosting.Systemd takes a process for a systemd
/// service when its parent's name (/proc/PPID/comm) is "systemd", so demu is started here from a shell that renamed
/// itself so, with NOTIFY_SOCKET on a socket the test listens on — the same conditions as under a Type=notify unit.
/// </summary>
[TestFixture]
public sealed class DemuServeSystemdTests
{
    [Test]
    public async Task UnderSystemdServeSendsReadyAndStoppingAndLogsInTheJournalsFormat()
    {
        string socketPath = Path.Combine(Path.GetTempPath(), $"ioreqsdk-demu-notify-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            // The shell stays demu's parent (a background job it waits for), under the name systemd gives its services' parent.
            var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string argument in new List<string> { "-c", "printf systemd > /proc/$$/comm && { \"$@\" & wait $!; }", "sh", DotnetHost(), typeof(DemuCommand).Assembly.Location, "serve", "--simulate" })
            {
                info.ArgumentList.Add(argument);
            }

            info.Environment["NOTIFY_SOCKET"] = socketPath;
            using Process demu = Process.Start(info)!;
            Task<string> stderr = demu.StandardError.ReadToEndAsync(guard.Token);
            Task<string> stdout = demu.StandardOutput.ReadToEndAsync(guard.Token);

            string ready = await SystemdReadinessTests.ReceiveAsync(listener, guard.Token);
            string stopping = await SystemdReadinessTests.ReceiveAsync(listener, guard.Token);
            await demu.WaitForExitAsync(guard.Token);
            string log = await stderr;
            string output = await stdout;

            using (Assert.EnterMultipleScope())
            {
                Assert.That(demu.ExitCode, Is.Zero, output + log);
                Assert.That(ready, Is.EqualTo("READY=1"));
                Assert.That(stopping, Is.EqualTo("STOPPING=1"));
                Assert.That(output, Does.Contain("InitWait; the guest reads magic 0x74726976"), "the simulated guest was served after READY=1");

                // The journal's format: a syslog priority (<6> informational) in front of each line.
                Assert.That(log, Does.Contain("<6>IoreqSdk.Xenstore.Backend[101]"), log);
            }
        }
        finally
        {
            File.Delete(socketPath);
        }
    }

    private static string DotnetHost() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
}
