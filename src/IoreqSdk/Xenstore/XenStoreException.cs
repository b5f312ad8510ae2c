using System;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Xenstore;

/// <summary>
/// A xenstore call failed in a way the caller cannot retry away (permission denied, a malformed path, a lost
/// connection). A missing node and a transaction conflict are answers, not exceptions (see <see cref="IXenStore"/>).
/// </summary>
public class XenStoreException : HypervisorException
{
    /// <summary>A failure with no errno.</summary>
    public XenStoreException()
    {
    }

    /// <summary>A failure described by <paramref name="message"/>.</summary>
    public XenStoreException(string message)
        : base(message)
    {
    }

    /// <summary>A failure caused by <paramref name="innerException"/>.</summary>
    public XenStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The call <paramref name="operation"/> on <paramref name="path"/> failed with <paramref name="errorNumber"/>.</summary>
    public XenStoreException(string operation, string? path, int errorNumber, string message)
        : base(operation, errorNumber, message)
    {
        Path = path;
    }

    /// <summary>The path the call was about, when it had one.</summary>
    public string? Path { get; }
}
