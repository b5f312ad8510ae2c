using System;
using System.Collections.Generic;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Pci;

namespace Demu.Devices;

/// <summary>
/// A PCI 16550A serial port as QEMU's <c>pci-serial</c> presents it (1b36:0002, class 07/00 prog-if 02, one 8-port
/// I/O BAR, INTA), which Linux's <c>8250_pci</c> driver binds. The same code serves x86, where the BAR is real port
/// I/O, and Arm64, where the host bridge's PIO aperture carries it: the device cannot tell.
/// </summary>
public sealed class PciSerialDevice : PciDevice
{
    private readonly Uart16550 _uart;
    private readonly Action<byte> _output;

    // Bytes from the host waiting for room in the receive FIFO. Only the device's thread touches it (SendToGuest
    // posts there), so it needs no lock.
    private readonly Queue<byte> _pending = new();

    // Bytes accepted by SendToGuest and not yet handed to the UART (posted or in _pending): what bounds the host's side.
    private int _inFlight;

    /// <summary>Creates the port.</summary>
    /// <param name="output">Receives every byte the guest transmits.</param>
    public PciSerialDevice(Action<byte> output)
        : base("serial", new PciIdentity { VendorId = 0x1b36, DeviceId = 0x0002, RevisionId = 1, ClassCode = 0x070002, InterruptPin = 1 })
    {
        _output = output ?? throw new ArgumentNullException(nameof(output));
        _uart = new Uart16550(Transmit, SetIntx);
        Port = AddIoBar(0, 8, AccessWidths.Byte);
    }

    /// <summary>BAR 0: the UART's eight registers.</summary>
    public PciBar Port { get; }

    /// <summary>Bytes the guest transmitted.</summary>
    public long BytesTransmitted { get; private set; }

    /// <summary>Bytes delivered to the guest.</summary>
    public long BytesReceived { get; private set; }

    /// <summary>The most bytes from the host that wait for the guest at once (<see cref="SendToGuest"/> accepts no more).</summary>
    public const int MaxPendingBytes = 64 * 1024;

    /// <summary>The UART (for diagnostics).</summary>
    public Uart16550 Uart => _uart;

    /// <summary>
    /// Sends bytes to the guest, from any thread. They are handed to the device's thread and queued there, then fed to
    /// the UART's receiver as its FIFO has room: a host that sends faster than the guest reads is paced, as by
    /// hardware flow control, instead of losing bytes to overruns. At most <see cref="MaxPendingBytes"/> wait at once:
    /// a guest that never reads (or a host that pipes in a large file) cannot grow the queue without bound.
    /// </summary>
    /// <param name="bytes">The bytes (copied).</param>
    /// <returns>How many of them were accepted, from the start: fewer (0 included) while the guest has not read what
    /// waits, or once the server stopped; the caller sends the rest later.</returns>
    public int SendToGuest(ReadOnlySpan<byte> bytes)
    {
        int accepted;
        while (true)
        {
            int inFlight = Volatile.Read(ref _inFlight);
            accepted = Math.Min(bytes.Length, MaxPendingBytes - inFlight);
            if (accepted <= 0)
            {
                return 0;
            }

            if (Interlocked.CompareExchange(ref _inFlight, inFlight + accepted, inFlight) == inFlight)
            {
                break;
            }
        }

        byte[] copy = bytes.Slice(0, accepted).ToArray();
        bool posted = Context.TryPost(() =>
        {
            foreach (byte b in copy)
            {
                _pending.Enqueue(b);
            }

            Feed();
        });
        if (!posted)
        {
            Interlocked.Add(ref _inFlight, -accepted);
            return 0;
        }

        return accepted;
    }

    /// <inheritdoc/>
    protected override ulong ReadBar(PciBar bar, ulong offset, int size)
    {
        byte value = _uart.Read((int)offset);
        if (offset == 0 && _pending.Count > 0)
        {
            // A receive-buffer read (or a divisor read, which costs nothing here) may have made room.
            Feed();
        }

        return value;
    }

    /// <inheritdoc/>
    protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
    {
        _uart.Write((int)offset, (byte)value);
        if (_pending.Count > 0)
        {
            // A FIFO reset or enable (the driver's start-up does both) may have made room for waiting bytes.
            Feed();
        }
    }

    private void Feed()
    {
        int room = _uart.ReceiveSpace;
        if (room <= 0)
        {
            return;
        }

        Span<byte> chunk = stackalloc byte[Uart16550.FifoSize];
        int n = 0;
        while (n < room && n < chunk.Length && _pending.Count > 0)
        {
            chunk[n++] = _pending.Dequeue();
        }

        _uart.Receive(chunk.Slice(0, n));
        BytesReceived += n;
        Interlocked.Add(ref _inFlight, -n);
    }

    private void Transmit(byte value)
    {
        BytesTransmitted++;
        _output(value);
    }
}
