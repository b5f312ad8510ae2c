using System;
using System.Collections.Concurrent;
using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Simulation;

/// <summary>
/// An event-channel handle as Linux's <c>/dev/xen/evtchn</c> presents it: a delivered port is masked until the
/// owner unmasks it; an event arriving while masked is remembered and delivered on unmask.
/// </summary>
internal sealed class SimulatedEventChannel : IEventChannel
{
    private const int Masked = 1;
    private const int PendingWhileMasked = 2;

    private readonly SimulatedHypervisor _hypervisor;
    private readonly ConcurrentQueue<uint> _pending = new();
    private readonly SemaphoreSlim _signal = new(0);
    private GuestPort?[] _ports = new GuestPort?[8];
    private int[] _portState = new int[8];
    private uint _nextPort = 1;
    private int _interrupted;
    private int _failed;
    private bool _disposed;

    public SimulatedEventChannel(SimulatedHypervisor hypervisor) => _hypervisor = hypervisor;

    public uint BindInterdomain(ushort domain, uint remotePort)
    {
        lock (this)
        {
            ObjectDisposedIf();
            GuestPort port = _hypervisor.FindGuestPort(domain, remotePort);
            uint local = _nextPort++;
            if (local >= _ports.Length)
            {
                Array.Resize(ref _ports, _ports.Length * 2);
                Array.Resize(ref _portState, _portState.Length * 2);
            }

            port.Bind(this, local);
            Volatile.Write(ref _ports[local], port);
            return local;
        }
    }

    public void Unbind(uint localPort)
    {
        lock (this)
        {
            GuestPort port = Port(localPort, "xenevtchn_unbind");
            port.Unbind();
            _ports[localPort] = null;
        }
    }

    public void Notify(uint localPort) => Port(localPort, "xenevtchn_notify").NotifyGuest();

    public void Unmask(uint localPort)
    {
        Port(localPort, "xenevtchn_unmask");
        ref int state = ref _portState[localPort];
        while (true)
        {
            int current = Volatile.Read(ref state);
            if ((current & PendingWhileMasked) != 0)
            {
                // An event came while masked: deliver it now (the port stays masked until the next unmask).
                if (Interlocked.CompareExchange(ref state, Masked, current) == current)
                {
                    Enqueue(localPort);
                    return;
                }
            }
            else if (Interlocked.CompareExchange(ref state, 0, current) == current)
            {
                return;
            }
        }
    }

    public bool WaitPending(out uint localPort)
    {
        while (true)
        {
            if (Volatile.Read(ref _failed) != 0)
            {
                throw new HypervisorException("xenevtchn_pending", Errno.ENODEV, "xenevtchn_pending: the event-channel device failed (simulated).");
            }

            if (_pending.TryDequeue(out localPort))
            {
                return true;
            }

            if (Interlocked.Exchange(ref _interrupted, 0) != 0)
            {
                localPort = 0;
                return false;
            }

            _signal.Wait();
        }
    }

    public void Interrupt()
    {
        if (Volatile.Read(ref _disposed))
        {
            // On Linux this is a write to a closed eventfd's number, which the process may have reused for another
            // file since: harmless here, a stray write there. Counted (SimulationDiagnostics.InterruptsAfterClose) so that a test can prove it never happens.
            _hypervisor.Diagnostics.CountInterruptAfterClose();
            return;
        }

        Volatile.Write(ref _interrupted, 1);
        _signal.Release();
    }

    public void Dispose()
    {
        lock (this)
        {
            if (_disposed)
            {
                return;
            }

            Volatile.Write(ref _disposed, true);
            foreach (GuestPort? port in _ports)
            {
                port?.Unbind();
            }
        }
    }

    /// <summary>From now on every wait on this handle fails, as a read of a broken <c>/dev/xen/evtchn</c> would; a waiter is woken to see it.</summary>
    internal void FailWaits()
    {
        Volatile.Write(ref _failed, 1);
        _signal.Release();
    }

    /// <summary>The remote end signalled <paramref name="localPort"/> (Xen's <c>notify_via_xen_event_channel</c>).</summary>
    internal void Deliver(uint localPort)
    {
        ref int state = ref _portState[localPort];
        while (true)
        {
            int current = Volatile.Read(ref state);
            int next = (current & Masked) != 0 ? current | PendingWhileMasked : Masked;
            if (Interlocked.CompareExchange(ref state, next, current) == current)
            {
                if ((current & Masked) == 0)
                {
                    Enqueue(localPort);
                }

                return;
            }
        }
    }

    private void Enqueue(uint localPort)
    {
        _pending.Enqueue(localPort);
        _signal.Release();
    }

    private GuestPort Port(uint localPort, string operation)
    {
        GuestPort?[] ports = Volatile.Read(ref _ports);
        GuestPort? port = localPort < (uint)ports.Length ? Volatile.Read(ref ports[localPort]) : null;
        if (port is null)
        {
            throw new HypervisorException(operation, Errno.EINVAL, $"{operation}: local port {localPort} is not bound on this handle.");
        }

        return port;
    }

    private void ObjectDisposedIf()
    {
        if (_disposed)
        {
            throw new ObjectDisposedException(nameof(SimulatedEventChannel));
        }
    }
}
