using System;
using System.Collections.Generic;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;

namespace IoreqSdk.Hosting;

/// <summary>
/// How the hosted ioreq server runs, bound from configuration section <see cref="SectionName"/> ("Ioreq"): in
/// appsettings.json (<c>{ "Ioreq": { "Domain": 5, "Platform": "arm64" } }</c>), environment variables
/// (<c>Ioreq__Domain=5</c>) or the command line (<c>--Ioreq:Domain 5</c>, or <c>--domain 5</c> through
/// <see cref="CommandLineSwitches"/>). Checked when the host starts: an invalid value stops the start with a message
/// that names the setting.
/// </summary>
public sealed class IoreqServerHostOptions
{
    /// <summary>The configuration section the options are bound from.</summary>
    public const string SectionName = "Ioreq";

    /// <summary>Real or simulated Xen (default: real).</summary>
    public IoreqHostMode Mode { get; set; } = IoreqHostMode.Xen;

    /// <summary>
    /// The guest domain (1 to 32751, as <c>xl list</c> shows it). Required on real Xen; on the simulated Xen, the
    /// simulated guest's id (default 1).
    /// </summary>
    public ushort Domain { get; set; }

    /// <summary>
    /// The guest's architecture: <c>x86</c> (HVM) or <c>arm64</c>. On real Xen it must be the host's (unset: the
    /// host's); on the simulated Xen it chooses the simulated guest (unset: x86).
    /// </summary>
    public GuestArchitecture? Platform { get; set; }

    /// <summary>
    /// Real Xen: restrict the process's Xen handles to <see cref="Domain"/> once the server is up (default: on), so a
    /// device model taken over by its guest cannot reach any other domain. See <see cref="IoreqServerOptions.RestrictHandlesToDomain"/>.
    /// It applies to the Xen the host opens, and to a hypervisor given by <see cref="IoreqServerBuilder.UseHypervisor"/> with <c>restrictHandles</c>.
    /// </summary>
    public bool RestrictHandlesToDomain { get; set; } = true;

    /// <summary>How often the host asks Xen whether the guest is still there (default 1 s); when it is gone, the application stops.</summary>
    public TimeSpan GuestCheckInterval { get; set; } = IoreqServerShutdown.DefaultGuestCheckInterval;

    /// <summary>
    /// How long a stop waits for the event loop to tear the server down by itself (default 5 s) before destroying the
    /// ioreq server directly (a device call that does not return); the host's own shutdown timeout bounds it too.
    /// </summary>
    public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a loop spins on its vCPUs' slots after a request before it sleeps (default zero: never, up to one
    /// second); it costs a CPU a loop while the guest keeps sending. See <see cref="IoreqServerOptions.BusyPoll"/>.
    /// </summary>
    public TimeSpan BusyPoll { get; set; }

    /// <summary>
    /// How many threads serve the guest's vCPUs (default one, at most one a vCPU; with <see cref="BusyPoll"/>, each spins). See
    /// <see cref="IoreqServerOptions.LoopThreads"/>: only regions the devices declare concurrent gain from more.
    /// </summary>
    public int LoopThreads { get; set; } = 1;

    /// <summary>
    /// Short command-line switches for <c>AddCommandLine(args, switchMappings)</c>: <c>--domain</c>, <c>--platform</c>,
    /// <c>--mode</c> (xen or simulated), <c>--restrict</c> (true or false), <c>--busy-poll</c> (a time, e.g. 00:00:00.00005) and <c>--loop-threads</c> (a count). A new dictionary each time: a caller may
    /// add switches of its own to it.
    /// </summary>
    public static IDictionary<string, string> CommandLineSwitches => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["--domain"] = $"{SectionName}:{nameof(Domain)}",
        ["--platform"] = $"{SectionName}:{nameof(Platform)}",
        ["--mode"] = $"{SectionName}:{nameof(Mode)}",
        ["--restrict"] = $"{SectionName}:{nameof(RestrictHandlesToDomain)}",
        ["--busy-poll"] = $"{SectionName}:{nameof(BusyPoll)}",
        ["--loop-threads"] = $"{SectionName}:{nameof(LoopThreads)}",
    };

    /// <summary>Why these options cannot run, said so the user knows which setting to change; null when they can.</summary>
    internal string? Problem(bool hypervisorGiven)
    {
        const string Prefix = SectionName + ":";
        if (Mode is not (IoreqHostMode.Xen or IoreqHostMode.Simulated))
        {
            return $"{Prefix}{nameof(Mode)}: {(int)Mode} is not a mode; give Xen or Simulated.";
        }

        if (Mode == IoreqHostMode.Xen && Domain == 0 && !hypervisorGiven)
        {
            return $"{Prefix}{nameof(Domain)}: no guest domain given; set it to the guest's id as xl list shows it (1 to 32751), e.g. --domain 5, or set {Prefix}{nameof(Mode)} to Simulated for a dry run.";
        }

        if (Domain >= 0x7FF0)
        {
            return $"{Prefix}{nameof(Domain)}: {Domain} is a reserved domain id (32752 and up); give the guest's id, 1 to 32751.";
        }

        if (Platform is { } platform && platform is not (GuestArchitecture.X86 or GuestArchitecture.Arm64))
        {
            return $"{Prefix}{nameof(Platform)}: {(int)platform} is not a guest architecture; give x86 or arm64.";
        }

        if (GuestCheckInterval <= TimeSpan.Zero || GuestCheckInterval.TotalMilliseconds > int.MaxValue)
        {
            return $"{Prefix}{nameof(GuestCheckInterval)}: {GuestCheckInterval} is not an interval; give a positive time below 24 days, e.g. 00:00:01.";
        }

        if (StopTimeout <= TimeSpan.Zero || StopTimeout.TotalMilliseconds > int.MaxValue)
        {
            return $"{Prefix}{nameof(StopTimeout)}: {StopTimeout} is not a timeout; give a positive time below 24 days, e.g. 00:00:05.";
        }

        if (BusyPoll < TimeSpan.Zero || BusyPoll > IoreqServerOptions.MaxBusyPoll)
        {
            return $"{Prefix}{nameof(BusyPoll)}: {BusyPoll} is not a busy poll; give zero (never) up to one second, e.g. 00:00:00.00005 for 50 microseconds.";
        }

        if (LoopThreads < 1 || LoopThreads > IoreqServerOptions.MaxLoopThreads)
        {
            return $"{Prefix}{nameof(LoopThreads)}: {LoopThreads} is not a loop-thread count; give 1 to {IoreqServerOptions.MaxLoopThreads}.";
        }

        return null;
    }
}
