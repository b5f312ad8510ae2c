using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Demu;

/// <summary>The emulator's logging: the ioreq server's life cycle on standard error with --verbose, nothing otherwise.</summary>
internal static class Logging
{
    public static ILoggerFactory Create(DemuSettings settings) => settings.Verbose
        ? LoggerFactory.Create(builder => builder
            .SetMinimumLevel(LogLevel.Debug)
            .AddSimpleConsole(options => options.SingleLine = true)
            .AddConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace))
        : NullLoggerFactory.Instance;
}
