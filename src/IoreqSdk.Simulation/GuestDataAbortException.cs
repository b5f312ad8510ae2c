using System;

namespace IoreqSdk.Simulation;

/// <summary>An Arm64 guest access hit no handler: Xen 4.17 injects a data abort into the guest.</summary>
public sealed class GuestDataAbortException : Exception
{
    /// <summary>Creates the exception.</summary>
    public GuestDataAbortException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The access.</param>
    public GuestDataAbortException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The access.</param>
    /// <param name="innerException">The cause.</param>
    public GuestDataAbortException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
