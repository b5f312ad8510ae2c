using System;

namespace IoreqSdk.Hypervisor;

/// <summary>A hypervisor call failed; the message names the call and the error.</summary>
public class HypervisorException : Exception
{
    /// <summary>Creates the exception.</summary>
    public HypervisorException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed.</param>
    public HypervisorException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="innerException">The cause.</param>
    public HypervisorException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a failed call.</summary>
    /// <param name="operation">The call, e.g. <c>xendevicemodel_map_io_range_to_ioreq_server</c>.</param>
    /// <param name="errorNumber">The <c>errno</c> it returned.</param>
    /// <param name="message">What failed, in words.</param>
    public HypervisorException(string operation, int errorNumber, string message)
        : base(message)
    {
        Operation = operation;
        ErrorNumber = errorNumber;
    }

    /// <summary>The call that failed, when known.</summary>
    public string? Operation { get; }

    /// <summary>The <c>errno</c> value, or 0.</summary>
    public int ErrorNumber { get; }
}
