using Microsoft.Extensions.Logging;

namespace Demu.Serve;

/// <summary>A daemon's logs: every event on standard error, one line each (or JSON, whose fields name the domain and device).</summary>
internal static class ServeLogging
{
    public static ILoggerFactory Create(ServeSettings settings) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(LogLevel.Information);
        if (settings.JsonLogs)
        {
            builder.AddJsonConsole(options => options.IncludeScopes = true);
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
    });
}
