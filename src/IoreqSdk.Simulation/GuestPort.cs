using System;
using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Simulation;

/// <summary>
/// An unbound event channel Xen allocated in the guest's port space for an ioreq server (one per vCPU, one for the
/// ring), with the device model's binding once it binds.
/// </summary>
internal sealed class GuestPort
{
    private readonly Action? _onNotifyFromDm;
    private SimulatedEventChannel? _handle;
    private uint _localPort;

    public GuestPort(uint number, Action? onNotifyFromDm)
    {
        Number = number;
        _onNotifyFromDm = onNotifyFromDm;
    }

    public uint Number { get; }

    public bool IsBound => Volatile.Read(ref _handle) is not null;

    /// <summary>The device model's handle this port is bound on, if bound.</summary>
    public SimulatedEventChannel? Handle => Volatile.Read(ref _handle);

    public void Bind(SimulatedEventChannel handle, uint localPort)
    {
        if (_handle is not null)
        {
            throw new HypervisorException("xenevtchn_bind_interdomain", Errno.EINVAL, $"xenevtchn_bind_interdomain: guest port {Number} is bound already.");
        }

        _localPort = localPort;
        Volatile.Write(ref _handle, handle);
    }

    public void Unbind() => Volatile.Write(ref _handle, null);

    /// <summary>Xen signals the device model (a request was published).</summary>
    public void NotifyDm()
    {
        SimulatedEventChannel? handle = Volatile.Read(ref _handle);
        handle?.Deliver(_localPort);
    }

    /// <summary>The device model signalled this port (a response is ready).</summary>
    public void NotifyGuest() => _onNotifyFromDm?.Invoke();
}
