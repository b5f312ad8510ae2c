using System.Collections.Generic;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Xenstore.Backend;

/// <summary>What the backend service serves and how.</summary>
public sealed class XenstoreBackendOptions
{
    /// <summary>The domain the service runs in and whose <c>backend/</c> directory it watches (dom0 by default).</summary>
    public ushort BackendDomain { get; set; }

    /// <summary>The device types it builds, by <see cref="IBackendDeviceFactory.Type"/>.</summary>
    public IList<IBackendDeviceFactory> Factories { get; } = new List<IBackendDeviceFactory>();

    /// <summary>The most devices served at once: one more is refused (state Closed), so a flood of nodes cannot exhaust the host.</summary>
    public int MaxDevices { get; set; } = 64;

    /// <summary>The most keys read from one device's directory; a directory with more is refused.</summary>
    public int MaxKeysPerDevice { get; set; } = 64;

    /// <summary>Whether each device's ioreq server restricts its Xen handles to its guest once started.</summary>
    public bool RestrictHandlesToDomain { get; set; }

    /// <summary>
    /// How many loop threads each device's ioreq server runs (<see cref="Server.IoreqServerOptions.LoopThreads"/>: one
    /// by default, at most one a vCPU of its guest).
    /// </summary>
    public int LoopThreads { get; set; } = 1;

    /// <summary>Loggers for the service and every device's server; none when null.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }
}
