using System;
using System.Runtime.CompilerServices;

namespace IoreqSdk.Server;

/// <summary>
/// Whether the calling thread is a request loop's (<see cref="RequestLoop"/>): the thread of a concurrent region's
/// handler, which may not drive what belongs to the event loop. Interrupt lines and PCI message signals check it, as
/// guest memory checks that it is on the event loop, so that a handler's mistake is a contained fault instead of a
/// race with the event loop over the device's interrupt state.
/// </summary>
internal static class RequestLoopThread
{
    [ThreadStatic]
    private static bool t_isCurrent;

    /// <summary>Whether the caller runs on a request loop.</summary>
    public static bool IsCurrent
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => t_isCurrent;
    }

    /// <summary>Marks the calling thread as a request loop's, for its life (a request loop's thread runs nothing else).</summary>
    public static void Enter() => t_isCurrent = true;

    /// <summary>Throws if the caller is a request loop, saying that <paramref name="what"/> is the event loop's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ThrowIfCurrent(string what)
    {
        if (t_isCurrent)
        {
            Throw(what);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(string what) =>
        ThrowHelper.ThrowInvalidOperation($"{what} is driven from the server's event loop, not from a request loop (a handler of a region declared with ServeConcurrently runs there): post the change to the event loop with IDeviceContext.TryPost.");
}
