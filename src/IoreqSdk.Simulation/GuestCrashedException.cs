using System;

namespace IoreqSdk.Simulation;

/// <summary>The simulated Xen crashed the guest domain, as real Xen would (the message says why).</summary>
public sealed class GuestCrashedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public GuestCrashedException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why the domain was crashed.</param>
    public GuestCrashedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why the domain was crashed.</param>
    /// <param name="innerException">The cause.</param>
    public GuestCrashedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
