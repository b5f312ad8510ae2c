using System;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Simulation;

/// <summary>
/// One vCPU of the simulated guest. Its accesses go through Xen's rules: internal intercepts (the CF8 latch),
/// server selection, the buffered ring where Xen uses it, otherwise the synchronous slot protocol — and the vCPU
/// blocks until the device model answers. Use one vCPU from one thread at a time.
/// </summary>
public sealed class SimulatedVcpu : IDisposable
{
    private const ushort ConfigAddressPort = 0xCF8;
    private const ushort ConfigDataPort = 0xCFC;

    private readonly SimulatedHypervisor _xen;
    private readonly SemaphoreSlim _responses = new(0);
    private readonly Random _garbage;
    private uint _configAddress;

    internal SimulatedVcpu(SimulatedHypervisor xen, int index)
    {
        _xen = xen;
        Index = index;
        _garbage = new Random(xen.Options.GarbageSeed + index);
    }

    /// <summary>The vCPU id (its ioreq slot).</summary>
    public int Index { get; }

    /// <summary>Synchronous requests this vCPU sent and saw answered.</summary>
    public long CompletedRequests { get; private set; }

    /// <summary>Reads MMIO (a load of 1, 2, 4 or 8 bytes).</summary>
    /// <param name="address">The guest-physical address.</param>
    /// <param name="size">The width.</param>
    /// <returns>The value the guest's register receives.</returns>
    public ulong ReadMmio(ulong address, int size)
    {
        var request = Request(IoreqType.Copy, address, size, IoreqDirection.Read, 0);
        if (_xen.Architecture == GuestArchitecture.Arm64)
        {
            // Xen 4.17 on Arm leaves the register's old contents in data for a read.
            request.Data = Garbage();
        }

        return Route(IoRangeType.Memory, request);
    }

    /// <summary>Writes MMIO (a store of 1, 2, 4 or 8 bytes).</summary>
    /// <param name="address">The guest-physical address.</param>
    /// <param name="size">The width.</param>
    /// <param name="value">The value (its low <paramref name="size"/> bytes are stored).</param>
    public void WriteMmio(ulong address, int size, ulong value)
    {
        ulong data = value & Mask(size);
        if (_xen.Architecture == GuestArchitecture.Arm64 && size < 8)
        {
            // Xen 4.17 on Arm forwards the whole source register: garbage above the access size.
            data |= Garbage() << (size * 8);
        }

        Route(IoRangeType.Memory, Request(IoreqType.Copy, address, size, IoreqDirection.Write, data));
    }

    /// <summary>Reads a port (x86 <c>in</c>).</summary>
    /// <param name="port">The port.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <returns>The value.</returns>
    public uint In(ushort port, int size)
    {
        X86Only();
        if ((port & ~3) == ConfigDataPort && (_configAddress & 0x8000_0000) != 0)
        {
            return (uint)PciConfig(port, size, IoreqDirection.Read, 0);
        }

        return (uint)Route(IoRangeType.Port, Request(IoreqType.Pio, port, size, IoreqDirection.Read, 0));
    }

    /// <summary>Writes a port (x86 <c>out</c>).</summary>
    /// <param name="port">The port.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <param name="value">The value.</param>
    public void Out(ushort port, int size, uint value)
    {
        X86Only();
        if (port == ConfigAddressPort && size == 4)
        {
            // Xen latches only 4-byte writes to CONFIG_ADDRESS, then passes the access on as ordinary port I/O.
            _configAddress = value;
        }
        else if ((port & ~3) == ConfigDataPort && (_configAddress & 0x8000_0000) != 0)
        {
            PciConfig(port, size, IoreqDirection.Write, value);
            return;
        }

        Route(IoRangeType.Port, Request(IoreqType.Pio, port, size, IoreqDirection.Write, value & (uint)Mask(size)));
    }

    /// <summary>x86 <c>rep ins</c>: <paramref name="count"/> reads of a port into guest RAM.</summary>
    /// <param name="port">The port.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <param name="ram">The first RAM address.</param>
    /// <param name="count">Elements.</param>
    /// <param name="down">The direction flag (addresses decrement).</param>
    public void RepIns(ushort port, int size, ulong ram, uint count, bool down = false) =>
        RepPort(port, size, ram, count, down, IoreqDirection.Read);

    /// <summary>x86 <c>rep outs</c>: <paramref name="count"/> writes to a port from guest RAM.</summary>
    /// <param name="port">The port.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <param name="ram">The first RAM address.</param>
    /// <param name="count">Elements.</param>
    /// <param name="down">The direction flag.</param>
    public void RepOuts(ushort port, int size, ulong ram, uint count, bool down = false) =>
        RepPort(port, size, ram, count, down, IoreqDirection.Write);

    /// <summary>x86 <c>rep stos</c> to MMIO: the same value at <paramref name="count"/> consecutive elements.</summary>
    /// <param name="address">The first MMIO address.</param>
    /// <param name="size">The element width.</param>
    /// <param name="value">The value.</param>
    /// <param name="count">Elements.</param>
    /// <param name="down">The direction flag.</param>
    public void RepStos(ulong address, int size, ulong value, uint count, bool down = false)
    {
        X86Only();
        var request = Request(IoreqType.Copy, address, size, IoreqDirection.Write, value & Mask(size));
        request.Count = count;
        request.DirectionFlag = down;
        Route(IoRangeType.Memory, request);
    }

    /// <summary>x86 <c>rep movs</c> between RAM and MMIO (Xen forwards it with <c>data_is_ptr</c>).</summary>
    /// <param name="mmio">The first MMIO address.</param>
    /// <param name="ram">The first RAM address.</param>
    /// <param name="size">The element width.</param>
    /// <param name="count">Elements.</param>
    /// <param name="toDevice">RAM → MMIO when set, MMIO → RAM otherwise.</param>
    /// <param name="down">The direction flag.</param>
    public void RepMovs(ulong mmio, ulong ram, int size, uint count, bool toDevice, bool down = false)
    {
        X86Only();
        var request = Request(IoreqType.Copy, mmio, size, toDevice ? IoreqDirection.Write : IoreqDirection.Read, ram);
        request.Count = count;
        request.DataIsPointer = true;
        request.DirectionFlag = down;
        Route(IoRangeType.Memory, request);
    }

    /// <summary>
    /// Removes a guest frame from the physmap (as ballooning does) and broadcasts INVALIDATE from this vCPU: every
    /// enabled server must drop its guest mappings before the vCPU continues.
    /// </summary>
    /// <param name="frame">The guest frame number.</param>
    public void RemoveFrameAndInvalidate(ulong frame)
    {
        _xen.RemoveFrame(frame);
        foreach (SimulatedServer server in _xen.Servers.Enabled())
        {
            var request = Request(IoreqType.Invalidate, 0, 4, IoreqDirection.Write, ulong.MaxValue);
            request.Count = 0;
            SendSynchronous(server, request);
        }
    }

    /// <summary>Sends exactly this request to a server, bypassing Xen's routing: for hostile-input tests.</summary>
    /// <param name="server">The server id.</param>
    /// <param name="request">The request; its state and port are set by the simulation.</param>
    /// <returns>The response's data.</returns>
    public ulong SendRaw(ushort server, IoRequest request)
    {
        SimulatedServer s = _xen.Servers.Enabled().Find(x => x.Id == server)
            ?? throw new InvalidOperationException($"server {server} is not enabled");
        return SendSynchronous(s, request);
    }

    /// <inheritdoc/>
    public void Dispose() => _responses.Dispose();

    internal void OnResponseNotified() => _responses.Release();

    private void RepPort(ushort port, int size, ulong ram, uint count, bool down, IoreqDirection direction)
    {
        X86Only();
        var request = Request(IoreqType.Pio, port, size, direction, ram);
        request.Count = count;
        request.DataIsPointer = true;
        request.DirectionFlag = down;
        Route(IoRangeType.Port, request);
    }

    private ulong PciConfig(ushort port, int size, IoreqDirection direction, uint value)
    {
        // hvm_pci_decode_addr: BDF from bits 8–23, register from bits 2–7 plus the port's low bits; segment 0.
        uint bdf = (_configAddress >> 8) & 0xFFFF;
        uint register = (_configAddress & 0xFC) | (uint)(port & 3);
        var sbdf = PciSbdf.FromValue(bdf);
        var request = Request(IoreqType.PciConfig, PciConfigAddress.Encode(sbdf, register), size, direction, value & (uint)Mask(size));
        SimulatedServer? server = _xen.Servers.Select(IoRangeType.Pci, sbdf.Value, sbdf.Value);
        if (server is null)
        {
            // No server claimed the function: Xen's null handler.
            return direction == IoreqDirection.Read ? Mask(size) : 0;
        }

        return SendSynchronous(server, request) & Mask(size);
    }

    private ulong Route(IoRangeType type, IoRequest request)
    {
        _xen.ThrowIfCrashed();
        int size = (int)request.Size;
        ulong span = ((ulong)Math.Max(request.Count, 1u) - 1) * (ulong)size;
        ulong first = request.Address;
        ulong last = request.Address + (ulong)(size - 1);
        if (type == IoRangeType.Memory && request.Count > 1)
        {
            // The whole rep access, honouring df, must fit in one range.
            first = request.DirectionFlag ? request.Address - span : request.Address;
            last = (request.DirectionFlag ? request.Address : request.Address + span) + (ulong)(size - 1);
        }

        SimulatedServer? server = _xen.Servers.Select(type, first, last);
        if (server is null)
        {
            if (_xen.Architecture == GuestArchitecture.Arm64)
            {
                throw new GuestDataAbortException(FormattableString.Invariant($"vCPU {Index}: {(request.IsRead ? "read" : "write")} of {size} bytes at 0x{request.Address:x} hit no handler"));
            }

            // x86's null handler: reads return all-ones, writes are dropped.
            return request.IsRead && !request.DataIsPointer ? Mask(size) : 0;
        }

        if (TryBuffer(server, request))
        {
            return 0;
        }

        ulong data = SendSynchronous(server, request);
        return request.IsRead && !request.DataIsPointer ? data & Mask(size) : 0;
    }

    /// <summary>stdvga's buffered path: single, non-pointer writes to the VGA window go to the server's ring.</summary>
    private bool TryBuffer(SimulatedServer server, IoRequest request)
    {
        if (_xen.Architecture != GuestArchitecture.X86 || server.Mode == BufferedIoreqMode.Off
            || request.Type != IoreqType.Copy || request.IsRead || request.DataIsPointer || request.Count != 1
            || request.Address < 0xA0000 || request.Address > 0xBFFFF)
        {
            return false;
        }

        // A server destroyed meanwhile (a teardown on another thread) dropped the write, as its ring is gone.
        if (!server.TryHoldPages())
        {
            return true;
        }

        try
        {
            return SimulatedRing.TryWrite(server, request.Type, (uint)request.Address, (int)request.Size, request.Data);
        }
        finally
        {
            server.ReleasePages();
        }
    }

    /// <summary>
    /// The slot protocol, with the server's pages held for the access: a teardown on another thread may destroy the
    /// server meanwhile (Xen's vCPU sends under the server's lock, which its destruction takes), and its pages stay until
    /// the access is over. One destroyed before the access answers all-ones, as no server would.
    /// </summary>
    private ulong SendSynchronous(SimulatedServer server, IoRequest request)
    {
        if (!server.TryHoldPages())
        {
            return ulong.MaxValue;
        }

        try
        {
            return SendHeld(server, request);
        }
        finally
        {
            server.ReleasePages();
        }
    }

    private ulong SendHeld(SimulatedServer server, IoRequest request)
    {
        _xen.ThrowIfCrashed();
        SharedIoPage page = server.IoreqPage;
        ref IoRequest slot = ref page.Slot(Index);
        IoreqState before = page.ReadStateAcquire(Index);
        if (before != IoreqState.None)
        {
            _xen.Crash($"vCPU {Index}: device model set bad IO state {(int)before} (a slot must be NONE before Xen sends a request)");
        }

        // Copy the request in with state NONE, a full barrier, then READY (ioreq_send).
        uint port = slot.VcpuEventPort;
        request.VcpuEventPort = port;
        request.State = IoreqState.None;
        slot = request;
        Interlocked.MemoryBarrier();
        page.WriteStateRelease(Index, IoreqState.Ready);
        server.VcpuPorts[Index].NotifyDm();

        // wait_for_io: each wake-up, read state with acquire semantics; it may only move forward.
        IoreqState previous = IoreqState.Ready;
        while (true)
        {
            if (!_responses.Wait(_xen.Options.ResponseTimeout))
            {
                throw new TimeoutException(FormattableString.Invariant(
                    $"vCPU {Index} blocked: server {server.Id} did not answer a {request.Type} request at 0x{request.Address:x} within {_xen.Options.ResponseTimeout}"));
            }

            IoreqState state = page.ReadStateAcquire(Index);
            if ((int)state > (int)IoreqState.ResponseReady || state < previous)
            {
                _xen.Crash($"vCPU {Index}: Weird HVM ioreq state transition {(int)previous} -> {(int)state}");
            }

            previous = state;
            if (state == IoreqState.ResponseReady)
            {
                ulong data = slot.Data;
                page.WriteStateRelease(Index, IoreqState.None);
                CompletedRequests++;
                return data;
            }
        }
    }

    private static IoRequest Request(IoreqType type, ulong address, int size, IoreqDirection direction, ulong data)
    {
        if (size is not (1 or 2 or 4 or 8) || (type is IoreqType.Pio or IoreqType.PciConfig && size == 8))
        {
            throw new ArgumentOutOfRangeException(nameof(size), "An access is 1, 2, 4 or (MMIO only) 8 bytes.");
        }

        return new IoRequest { Type = type, Address = address, Size = (uint)size, Count = 1, Direction = direction, Data = data };
    }

    private ulong Garbage()
    {
        return ((ulong)(uint)_garbage.Next() << 33) ^ ((ulong)(uint)_garbage.Next() << 11) ^ (uint)_garbage.Next();
    }

    private void X86Only()
    {
        if (_xen.Architecture != GuestArchitecture.X86)
        {
            throw new InvalidOperationException("Arm64 has no port I/O or string instructions.");
        }
    }

    private static ulong Mask(int size) => size >= 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
}
