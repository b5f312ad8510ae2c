using System;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace IoreqSdk;

/// <summary>
/// Throw sites kept out of line (System.IO.Pipelines' pattern): the callers stay small enough to inline, and the
/// exception is only built when it is thrown.
/// </summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowArgumentOutOfRange(string paramName, string message) =>
        throw CreateArgumentOutOfRange(paramName, message);

    [DoesNotReturn]
    public static void ThrowArgument(string paramName, string message) =>
        throw CreateArgument(paramName, message);

    [DoesNotReturn]
    public static void ThrowInvalidOperation(string message) =>
        throw CreateInvalidOperation(message);

    [DoesNotReturn]
    public static void ThrowObjectDisposed(string objectName) =>
        throw CreateObjectDisposed(objectName);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ArgumentOutOfRangeException CreateArgumentOutOfRange(string paramName, string message) => new(paramName, message);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ArgumentException CreateArgument(string paramName, string message) => new(message, paramName);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static InvalidOperationException CreateInvalidOperation(string message) => new(message);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ObjectDisposedException CreateObjectDisposed(string objectName) => new(objectName);
}
