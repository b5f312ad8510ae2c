using System;

namespace IoreqSdk.Xenstore.Backend;

/// <summary>A device's xenstore description cannot be served (a key missing, malformed or out of range); the message says which and why.</summary>
public class BackendDeviceException : Exception
{
    /// <summary>A refusal with no detail.</summary>
    public BackendDeviceException()
    {
    }

    /// <summary>A refusal described by <paramref name="message"/>.</summary>
    public BackendDeviceException(string message)
        : base(message)
    {
    }

    /// <summary>A refusal caused by <paramref name="innerException"/>.</summary>
    public BackendDeviceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
