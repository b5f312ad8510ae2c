using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace Demu.Serve;

/// <summary>
/// A daemon's logs, through the host's logging: every event on standard error, one line each naming the domain and
/// device (the device scopes); JSON lines with --json-logs, whose fields name them; under systemd, the journal's format
/// (a syslog priority on each line), unless --json-logs asks for JSON.
/// </summary>
internal static class ServeLogging
{
    /// <summary>Sets the host's logging up; call after AddXenstoreBackend, whose systemd integration picks the journal's format first.</summary>
    public static void Configure(ILoggingBuilder builder, ServeSettings settings)
    {
        builder.ClearProviders();
        builder.SetMinimumLevel(LogLevel.Information);
        if (settings.JsonLogs)
        {
            builder.AddJsonConsole(options => options.IncludeScopes = true);
        }
        else if (SystemdHelpers.IsSystemdService())
        {
            builder.AddSystemdConsole(options => options.IncludeScopes = true);
        }
        else
        {
            builder.AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.IncludeScopes = true;
            });
        }

        builder.AddConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace);
    }
}
