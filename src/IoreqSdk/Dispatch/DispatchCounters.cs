namespace IoreqSdk.Dispatch;

/// <summary>
/// What the dispatcher counts as it serves requests: written by the event loop only (plain increments, no atomics on
/// the fast path); the server's statistics publish them. A type of the dispatcher's own, so that the dispatcher needs
/// nothing of the server.
/// </summary>
internal sealed class DispatchCounters
{
    internal long Pio;
    internal long Mmio;
    internal long PciConfig;
    internal long TimeOffset;
    internal long Unknown;
    internal long Malformed;
    internal long UnclaimedRead;
    internal long UnclaimedWrite;
    internal long DeviceFault;
    internal long GuestMemoryFault;
    internal long RefusedWidth;
}
