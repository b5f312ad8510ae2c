using System;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// An oracle saw the SDK misbehave on a guest's input: thrown out of the harness so that AFL++ records the input as a
/// crash (a hang is a crash too here: the harness times out a vCPU long before AFL's own limit kills the process).
/// </summary>
public sealed class FuzzFailureException : Exception
{
    /// <summary>Creates the failure.</summary>
    public FuzzFailureException()
    {
    }

    /// <summary>Creates the failure.</summary>
    /// <param name="message">Which oracle and what it saw.</param>
    public FuzzFailureException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the failure.</summary>
    /// <param name="message">Which oracle and what it saw.</param>
    /// <param name="inner">What was thrown.</param>
    public FuzzFailureException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
