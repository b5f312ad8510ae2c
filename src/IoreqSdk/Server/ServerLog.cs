using System;
using IoreqSdk.Abi;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Server;

/// <summary>The server's log messages (logged in the <see cref="IoreqServer"/> category), and how they are logged
/// where a throwing provider must not stop what follows.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(1, LogLevel.Information, "ioreq server {Server} of domain {Domain} running: {Vcpus} vCPUs, buffered ring {Mode}")]
    public static partial void Started(ILogger logger, ushort domain, ushort server, int vcpus, BufferedIoreqMode mode);

    [LoggerMessage(2, LogLevel.Information, "ioreq server {Server} of domain {Domain} destroyed")]
    public static partial void Stopped(ILogger logger, ushort domain, ushort server);

    [LoggerMessage(3, LogLevel.Warning, "{Source} threw on {Loop} (contained; a request it served was answered, reads with all-ones; {Suppressed} earlier faults not reported)")]
    public static partial void DeviceFault(ILogger logger, string source, string loop, long suppressed, Exception exception);

    [LoggerMessage(4, LogLevel.Warning, "teardown step '{Step}' failed; continuing")]
    public static partial void TeardownStepFailed(ILogger logger, string step, Exception exception);

    [LoggerMessage(5, LogLevel.Warning, "{What} held {Loop} for {Milliseconds:F1} ms (threshold {Threshold} ms; every vCPU it serves waited; {Suppressed} earlier overruns not reported): long work belongs off the loop (IDeviceContext.TryRunOffLoop)")]
    public static partial void LoopOverrun(ILogger logger, string what, string loop, double milliseconds, double threshold, long suppressed);

    [LoggerMessage(6, LogLevel.Critical, "{Loop} failed and the server is torn down")]
    public static partial void LoopFailed(ILogger logger, string loop, Exception exception);

    /// <summary>Logs through the user's logger where a throwing provider must not stop what follows (teardown, the loop).</summary>
    public static void Safely(Action log)
    {
        try
        {
            log();
        }
        catch (Exception)
        {
            // Diagnostics are lost; the teardown or the loop is not.
        }
    }
}
