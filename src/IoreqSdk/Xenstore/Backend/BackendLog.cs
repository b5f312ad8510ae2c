using System;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Xenstore.Backend;

/// <summary>The backend service's log lines, each naming the domain and device it is about.</summary>
internal static partial class BackendLog
{
    private static readonly Func<ILogger, ushort, uint, string, IDisposable?> s_deviceScope =
        LoggerMessage.DefineScope<ushort, uint, string>("domain {Domain} device {Device} ({Kind})");

    /// <summary>The scope of one device's bring-up: its domain, device id and kind as fields (and in a text line).</summary>
    public static IDisposable? DeviceScope(ILogger logger, ushort domain, uint device, string kind) => s_deviceScope(logger, domain, device, kind);

    [LoggerMessage(101, LogLevel.Information, "watching {VirtioDisk} and {Sdk} for backend domain {Backend}")]
    public static partial void Watching(ILogger logger, string virtioDisk, string sdk, ushort backend);

    [LoggerMessage(102, LogLevel.Information, "stopping: tearing down {Count} devices")]
    public static partial void Stopping(ILogger logger, int count);

    [LoggerMessage(103, LogLevel.Error, "the xenstore connection closed; stopping")]
    public static partial void ConnectionClosed(ILogger logger);

    [LoggerMessage(104, LogLevel.Error, "handling the watch event {Event} failed; going on")]
    public static partial void HandlingFailed(ILogger logger, string @event, Exception exception);

    [LoggerMessage(105, LogLevel.Warning, "watch events were lost; rescanning every device")]
    public static partial void EventsLost(ILogger logger);

    [LoggerMessage(106, LogLevel.Error, "a device event handler failed")]
    public static partial void HandlerFailed(ILogger logger, Exception exception);

    [LoggerMessage(107, LogLevel.Warning, "ignoring {Path}: not <domain id>/<device id>")]
    public static partial void MalformedPath(ILogger logger, string path);

    [LoggerMessage(108, LogLevel.Information, "domain {Domain} device {Device}: frontend connected; state Connected")]
    public static partial void FrontendConnected(ILogger logger, ushort domain, uint device);

    [LoggerMessage(109, LogLevel.Information, "domain {Domain} device {Device}: serving {Type} on ioreq server {Server}; state {State}")]
    public static partial void Serving(ILogger logger, ushort domain, uint device, string type, ushort server, XenbusState state);

    [LoggerMessage(110, LogLevel.Error, "domain {Domain} device {Device} ({Kind}): refused: {Reason}; state {State}")]
    public static partial void Refused(ILogger logger, ushort domain, uint device, string kind, string reason, string state);

    [LoggerMessage(111, LogLevel.Information, "domain {Domain} device {Device}: closed {Type}: {Reason}; state {State}")]
    public static partial void Closed(ILogger logger, ushort domain, uint device, string type, string reason, string state);

    [LoggerMessage(112, LogLevel.Error, "tearing down {Path} failed")]
    public static partial void TeardownFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(113, LogLevel.Warning, "writing state {State} to {Path} kept conflicting; gave up")]
    public static partial void StateWriteGaveUp(ILogger logger, XenbusState state, string path);

    [LoggerMessage(114, LogLevel.Warning, "domain {Domain}: destroyed ioreq server {Server} a previous backend left")]
    public static partial void StaleServerDestroyed(ILogger logger, ushort domain, ushort server);

    [LoggerMessage(115, LogLevel.Information, "domain {Domain} device {Device}: its ioreq server answered {Requests} requests with {Loops} loop thread(s) ({HandedOff} came to a request loop and were handed to the event loop)")]
    public static partial void Served(ILogger logger, ushort domain, uint device, long requests, int loops, long handedOff);
}
