using System;

namespace IoreqSdk.Hypervisor;

/// <summary>
/// One event-channel handle (Xen's <c>xenevtchn_handle</c>): bind ports of another domain, wait for the ones that
/// fire, unmask them and notify the other end. A handle's pending queue belongs to one thread.
/// </summary>
public interface IEventChannel : IDisposable
{
    /// <summary>Binds a port of another domain (<c>xenevtchn_bind_interdomain</c>).</summary>
    /// <param name="domain">The domain that owns the remote port.</param>
    /// <param name="remotePort">The port in that domain's port space.</param>
    /// <returns>The local port.</returns>
    uint BindInterdomain(ushort domain, uint remotePort);

    /// <summary>Unbinds a local port (<c>xenevtchn_unbind</c>).</summary>
    /// <param name="localPort">The local port.</param>
    void Unbind(uint localPort);

    /// <summary>Signals the remote end of a local port (<c>xenevtchn_notify</c>).</summary>
    /// <param name="localPort">The local port.</param>
    void Notify(uint localPort);

    /// <summary>Unmasks a port after it was delivered (<c>xenevtchn_unmask</c>); a delivered port stays masked until then.</summary>
    /// <param name="localPort">The local port.</param>
    void Unmask(uint localPort);

    /// <summary>
    /// Blocks until a port fires or <see cref="Interrupt"/> is called (<c>poll</c> on the handle's descriptor, then
    /// <c>xenevtchn_pending</c>).
    /// </summary>
    /// <param name="localPort">The port that fired.</param>
    /// <returns><see langword="true"/> with a port; <see langword="false"/> when interrupted.</returns>
    bool WaitPending(out uint localPort);

    /// <summary>Wakes a thread blocked in <see cref="WaitPending"/> (from any thread); used to stop an event loop.</summary>
    void Interrupt();
}
