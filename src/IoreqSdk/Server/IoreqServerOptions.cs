using IoreqSdk.Abi;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Server;

/// <summary>How an <see cref="IoreqServer"/> runs.</summary>
public sealed class IoreqServerOptions
{
    /// <summary>The guest domain to serve.</summary>
    public ushort Domain { get; set; }

    /// <summary>
    /// The guest machine (<see cref="Platforms.GuestPlatform"/>); <see langword="null"/> takes the SDK's platform for
    /// the hypervisor's guests (<see cref="Platforms.GuestPlatform.For"/>).
    /// </summary>
    public Platforms.GuestPlatform? Platform { get; set; }

    /// <summary>
    /// The buffered-ring mode; <see langword="null"/> chooses the platform's (<see cref="Platforms.GuestPlatform.BufferedMode"/>:
    /// <see cref="BufferedIoreqMode.Atomic"/> on x86, <see cref="BufferedIoreqMode.Off"/> on Arm64, where Xen rejects a ring).
    /// </summary>
    public BufferedIoreqMode? BufferedMode { get; set; }

    /// <summary>Where diagnostics go; nothing is logged when <see langword="null"/>. Nothing is logged per request.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// Whether <see cref="IoreqServer.Start"/> ends by restricting the hypervisor's handles to <see cref="Domain"/>
    /// (<see cref="Hypervisor.IHypervisor.Restrict"/>) before the event loop serves the guest's first request: from
    /// then on a device model the guest took over cannot act on any other domain through them. Irreversible, and for
    /// the whole hypervisor object: it can serve no other guest afterwards. Off by default.
    /// </summary>
    public bool RestrictHandlesToDomain { get; set; }

    /// <summary>How many guest RAM frames the server keeps mapped at most (the map cache's capacity).</summary>
    public int GuestMemoryCacheFrames { get; set; } = 256;
}
