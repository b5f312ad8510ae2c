using System;
using IoreqSdk.Xenstore.Backend;

namespace IoreqSdk.Hosting.Xenstore;

/// <summary>
/// How the hosted xenstore backend runs, bound from configuration section <see cref="SectionName"/> ("XenstoreBackend"):
/// appsettings.json, environment variables (<c>XenstoreBackend__BackendDomain=0</c>) or the command line. Checked when
/// the host starts: an invalid value stops the start with a message that names the setting.
/// </summary>
public sealed class XenstoreBackendHostOptions
{
    /// <summary>The configuration section the options are bound from.</summary>
    public const string SectionName = "XenstoreBackend";

    /// <summary>The domain the backend runs in, whose <c>backend/</c> directory it watches (dom0 by default). See <see cref="XenstoreBackendOptions.BackendDomain"/>.</summary>
    public ushort BackendDomain { get; set; }

    /// <summary>Whether each device's Xen handles are restricted to its guest once its server is up (default: on). See <see cref="XenstoreBackendOptions.RestrictHandlesToDomain"/>.</summary>
    public bool RestrictHandlesToDomain { get; set; } = true;

    /// <summary>How many loop threads each device's ioreq server runs (default one). See <see cref="XenstoreBackendOptions.LoopThreads"/>.</summary>
    public int LoopThreads { get; set; } = 1;

    /// <summary>
    /// How long a stop waits for every device to be torn down (default 20 s) before destroying the ioreq servers still
    /// served directly (a device call that does not return); the host's own shutdown timeout bounds it too.
    /// </summary>
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Why these options cannot run, said so the user knows which setting to change; null when they can.</summary>
    internal string? Problem()
    {
        const string Prefix = SectionName + ":";
        if (BackendDomain >= 0x7FF0)
        {
            return $"{Prefix}{nameof(BackendDomain)}: {BackendDomain} is a reserved domain id (32752 and up); give dom0 (0) or the driver domain's id.";
        }

        if (StopTimeout <= TimeSpan.Zero || StopTimeout.TotalMilliseconds > int.MaxValue)
        {
            return $"{Prefix}{nameof(StopTimeout)}: {StopTimeout} is not a timeout; give a positive time below 24 days, e.g. 00:00:20.";
        }

        if (LoopThreads < 1 || LoopThreads > Server.IoreqServerOptions.MaxLoopThreads)
        {
            return $"{Prefix}{nameof(LoopThreads)}: {LoopThreads} is not a loop-thread count; give 1 to {Server.IoreqServerOptions.MaxLoopThreads}.";
        }

        return null;
    }
}
