using System;
using System.Threading;
using IoreqSdk.Devices.Uart;
using IoreqSdk.Pci;

namespace IoreqSdk.Devices.PciSerial;

/// <summary>
/// A PCI 16550A serial port as QEMU's <c>pci-serial</c> presents it (1b36:0002, class 07/00 prog-if 02, one 8-port
/// I/O BAR, INTA), which Linux's <c>8250_pci</c> driver binds. The same code serves x86, where the BAR is real port
/// I/O, and Arm64, where the host bridge's PIO aperture carries it: the device cannot tell.
/// </summary>
public sealed class PciSerialDevice : PciDevice
{
    /// <summary>
    /// How many bytes from the host may wait for the guest to read. Bounded so a guest that never reads cannot make
    /// the host's side grow without end: a sender past it is told (<see cref="SendToGuest(ReadOnlySpan{byte})"/>
    /// returns what it took) or waits (<see cref="SendToGuest(ReadOnlySpan{byte}, CancellationToken)"/>), as hardware
    /// flow control would hold it off.
    /// </summary>
    public const int HostQueueCapacity = 4096;

    private readonly Uart16550 _uart;
    private readonly Action<byte> _output;
    private readonly Action _feedPosted;

    // Bytes from the host waiting for room in the receive FIFO: filled by any thread (SendToGuest), drained on the
    // device's thread (Feed).
    private readonly HostByteQueue _host = new(HostQueueCapacity);

    /// <summary>Creates the port.</summary>
    /// <param name="output">Receives every byte the guest transmits, on the server's event loop, inside the guest's
    /// write: it must return at once (queue the byte for a writer of its own rather than write to a stream that can
    /// block).</param>
    public PciSerialDevice(Action<byte> output)
        : base("serial", new PciIdentity { VendorId = 0x1b36, DeviceId = 0x0002, RevisionId = 1, ClassCode = 0x070002, InterruptPin = 1 })
    {
        _output = output ?? throw new ArgumentNullException(nameof(output));
        _uart = new Uart16550(Transmit, SetIntx);
        _feedPosted = FeedPosted;
        Port = AddIoBar(0, 8, AccessWidths.Byte);
    }

    /// <summary>BAR 0: the UART's eight registers.</summary>
    public PciBar Port { get; }

    /// <summary>Bytes the guest transmitted.</summary>
    public long BytesTransmitted { get; private set; }

    /// <summary>Bytes delivered to the guest.</summary>
    public long BytesReceived { get; private set; }

    /// <summary>Bytes from the host waiting for the guest (at most <see cref="HostQueueCapacity"/>).</summary>
    public int BytesWaiting => _host.Count;

    /// <summary>The UART, for diagnostics (<see cref="Uart16550.Overruns"/>, <see cref="Uart16550.Divisor"/>): its
    /// registers belong to the guest, on the server's event loop.</summary>
    public Uart16550 Uart => _uart;

    /// <summary>
    /// Sends bytes to the guest, from any thread, without blocking: as many as fit in the host queue (see
    /// <see cref="HostQueueCapacity"/>) are taken, then fed to the UART's receiver on the device's thread as its FIFO
    /// has room, so a host that sends faster than the guest reads is paced instead of losing bytes to overruns. Bytes
    /// sent before the device is on a running server wait for the guest's driver to open the port.
    /// </summary>
    /// <param name="bytes">The bytes (copied).</param>
    /// <returns>How many were taken, from the start of <paramref name="bytes"/>; 0 while the queue is full.</returns>
    public int SendToGuest(ReadOnlySpan<byte> bytes)
    {
        int taken = _host.Enqueue(bytes, IsAttached ? Context.RunNumber : 0, out bool schedule);
        if (schedule && !(IsAttached && Context.TryPost(_feedPosted)))
        {
            // Not on a server yet, or its work queue is full or stopped: nothing was posted, so let the next send try
            // again. The bytes wait; the guest's next register access feeds them (its driver's start-up writes FCR).
            _host.Unschedule();
        }

        return taken;
    }

    /// <summary>
    /// Sends all of <paramref name="bytes"/> to the guest, waiting while the host queue is full, until the guest has
    /// made room for the last byte or <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    /// <param name="bytes">The bytes (copied).</param>
    /// <param name="cancellationToken">Ends the wait.</param>
    /// <returns>How many were taken: all of them, or fewer when cancelled.</returns>
    public int SendToGuest(ReadOnlySpan<byte> bytes, CancellationToken cancellationToken)
    {
        int sent = SendToGuest(bytes);
        if (sent == bytes.Length)
        {
            return sent;
        }

        while (sent < bytes.Length && !cancellationToken.IsCancellationRequested)
        {
            _host.WaitForRoom(cancellationToken);
            sent += SendToGuest(bytes.Slice(sent));
        }

        return sent;
    }

    /// <inheritdoc/>
    protected override ulong ReadBar(PciBar bar, ulong offset, int size)
    {
        byte value = _uart.Read((int)offset);
        if (offset == 0 && _host.Count > 0)
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
        if (_host.Count > 0)
        {
            // A FIFO reset or enable (the driver's start-up does both) may have made room for waiting bytes.
            Feed();
        }
    }

    private void FeedPosted()
    {
        _host.Unschedule();
        Feed();
    }

    private void Feed()
    {
        int room = _uart.ReceiveSpace;
        if (room <= 0)
        {
            return;
        }

        Span<byte> chunk = stackalloc byte[Uart16550.FifoSize];
        int n = _host.Peek(chunk.Slice(0, Math.Min(room, chunk.Length)));
        _host.Consume(n);

        // Outside the queue's lock: the receiver raises the interrupt line, a call into the hypervisor.
        _uart.Receive(chunk.Slice(0, n));
        BytesReceived += n;
    }

    private void Transmit(byte value)
    {
        BytesTransmitted++;
        _output(value);
    }
}
