using System;

namespace IoreqSdk.Server;

/// <summary>The guest rewrote its emulated RTC (Xen's buffered <c>IOREQ_TYPE_TIMEOFFSET</c>).</summary>
public sealed class TimeOffsetEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    /// <param name="deltaSeconds">The change in seconds.</param>
    public TimeOffsetEventArgs(long deltaSeconds) => DeltaSeconds = deltaSeconds;

    /// <summary>The change of the guest's RTC offset in seconds (new minus old), as Xen sends it.</summary>
    public long DeltaSeconds { get; }
}
