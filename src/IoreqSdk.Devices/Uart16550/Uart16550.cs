using System;

namespace IoreqSdk.Devices.Uart;

/// <summary>
/// A 16550A UART, independent of any bus (rust-vmm vm-superio's shape): eight byte registers, the 16-byte receive
/// FIFO, the divisor latch, and the interrupt identification logic a driver such as Linux's 8250 relies on
/// (priorities, the THR-empty interrupt cleared by reading IIR and re-armed by enabling it, character timeout,
/// loopback with the modem-control lines folded back into the modem status). Transmission is instantaneous: a byte
/// written to THR leaves at once through the transmit callback (or, in loopback, arrives at the receiver).
/// </summary>
/// <remarks>
/// No thread, no lock, no allocation after construction: call it from one thread at a time (a device's handlers, on
/// the server's event loop). The callbacks run inside the call that caused them, so they must return at once. The
/// registers follow the PC16550D datasheet; the folder's README.md lists them.
/// </remarks>
public sealed class Uart16550
{
    /// <summary>Receive and transmit FIFO depth.</summary>
    public const int FifoSize = 16;

    private const byte IerReceive = 0x01;
    private const byte IerTransmitEmpty = 0x02;
    private const byte IerLineStatus = 0x04;
    private const byte IerModemStatus = 0x08;

    private const byte IirNoInterrupt = 0x01;
    private const byte IirModemStatus = 0x00;
    private const byte IirTransmitEmpty = 0x02;
    private const byte IirReceiveData = 0x04;
    private const byte IirLineStatus = 0x06;
    private const byte IirCharacterTimeout = 0x0C;
    private const byte IirFifosEnabled = 0xC0;

    private const byte LcrDivisorLatch = 0x80;
    private const byte McrLoopback = 0x10;

    private const byte LsrDataReady = 0x01;
    private const byte LsrOverrun = 0x02;
    private const byte LsrTransmitEmpty = 0x20;
    private const byte LsrTransmitterIdle = 0x40;
    private const byte LsrErrors = 0x1E;

    private readonly byte[] _receive = new byte[FifoSize];
    private readonly Action<byte> _transmit;
    private readonly Action<bool> _interrupt;
    private int _receiveHead;
    private int _receiveCount;
    private byte _ier;
    private byte _lcr;
    private byte _mcr;
    private byte _lsr = LsrTransmitEmpty | LsrTransmitterIdle;
    private byte _msr = 0xB0;
    private byte _scratch;
    private ushort _divisor = 12;
    private bool _fifoEnabled;
    private int _triggerLevel = 1;
    private bool _transmitEmptyPending;
    private bool _interruptLine;

    /// <summary>Creates the UART.</summary>
    /// <param name="transmit">Receives every byte the guest sends.</param>
    /// <param name="interrupt">Receives the interrupt line's level whenever it changes.</param>
    public Uart16550(Action<byte> transmit, Action<bool> interrupt)
    {
        _transmit = transmit ?? throw new ArgumentNullException(nameof(transmit));
        _interrupt = interrupt ?? throw new ArgumentNullException(nameof(interrupt));
    }

    /// <summary>The divisor latch (115200 / divisor is the programmed baud rate).</summary>
    public ushort Divisor => _divisor;

    /// <summary>Bytes that arrived while the receive FIFO was full (each sets the overrun bit).</summary>
    public long Overruns { get; private set; }

    /// <summary>How many bytes the receiver can still take before overrunning.</summary>
    public int ReceiveSpace => (_fifoEnabled ? FifoSize : 1) - _receiveCount;

    /// <summary>Reads a register.</summary>
    /// <param name="offset">0–7.</param>
    /// <returns>The register's value.</returns>
    public byte Read(int offset)
    {
        byte value;
        switch (offset & 7)
        {
            case 0 when (_lcr & LcrDivisorLatch) != 0:
                return (byte)_divisor;
            case 1 when (_lcr & LcrDivisorLatch) != 0:
                return (byte)(_divisor >> 8);
            case 0:
                value = PopReceived();
                break;
            case 1:
                return _ier;
            case 2:
                value = Identify();
                if ((value & 0x0F) == IirTransmitEmpty)
                {
                    // Reading IIR while it reports THR empty acknowledges that interrupt.
                    _transmitEmptyPending = false;
                }

                break;
            case 3:
                return _lcr;
            case 4:
                return _mcr;
            case 5:
                value = _lsr;
                _lsr &= unchecked((byte)~LsrErrors);
                break;
            case 6:
                value = ModemStatus();
                _msr &= 0xF0;
                break;
            default:
                return _scratch;
        }

        UpdateInterrupt();
        return value;
    }

    /// <summary>Writes a register.</summary>
    /// <param name="offset">0–7.</param>
    /// <param name="value">The byte.</param>
    public void Write(int offset, byte value)
    {
        switch (offset & 7)
        {
            case 0 when (_lcr & LcrDivisorLatch) != 0:
                _divisor = (ushort)((_divisor & 0xFF00) | value);
                return;
            case 1 when (_lcr & LcrDivisorLatch) != 0:
                _divisor = (ushort)((_divisor & 0x00FF) | (value << 8));
                return;
            case 0:
                Send(value);
                break;
            case 1:
                byte enabled = (byte)(value & 0x0F);
                if ((enabled & IerTransmitEmpty) != 0 && (_ier & IerTransmitEmpty) == 0 && (_lsr & LsrTransmitEmpty) != 0)
                {
                    // Enabling the THR-empty interrupt while THR is empty raises it at once (drivers start
                    // interrupt-driven transmission this way).
                    _transmitEmptyPending = true;
                }

                _ier = enabled;
                break;
            case 2:
                WriteFifoControl(value);
                break;
            case 3:
                _lcr = value;
                return;
            case 4:
                _mcr = (byte)(value & 0x1F);
                break;
            case 5:
                return;   // LSR is read-only
            case 6:
                return;   // MSR is read-only
            default:
                _scratch = value;
                return;
        }

        UpdateInterrupt();
    }

    /// <summary>Bytes arriving on the serial line (the host's side). Bytes beyond the FIFO's room are lost with an overrun.</summary>
    /// <param name="bytes">The bytes.</param>
    public void Receive(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            Push(b);
        }

        UpdateInterrupt();
    }

    private void Send(byte value)
    {
        if ((_mcr & McrLoopback) != 0)
        {
            Push(value);
        }
        else
        {
            _transmit(value);
        }

        // Transmission is immediate: THR and the shift register are empty again.
        _lsr |= LsrTransmitEmpty | LsrTransmitterIdle;
        _transmitEmptyPending = (_ier & IerTransmitEmpty) != 0;
    }

    private void Push(byte value)
    {
        int capacity = _fifoEnabled ? FifoSize : 1;
        if (_receiveCount == capacity)
        {
            _lsr |= LsrOverrun;
            Overruns++;
            return;
        }

        _receive[(_receiveHead + _receiveCount) % FifoSize] = value;
        _receiveCount++;
        _lsr |= LsrDataReady;
    }

    private byte PopReceived()
    {
        if (_receiveCount == 0)
        {
            return 0;
        }

        byte value = _receive[_receiveHead];
        _receiveHead = (_receiveHead + 1) % FifoSize;
        _receiveCount--;
        if (_receiveCount == 0)
        {
            _lsr &= unchecked((byte)~LsrDataReady);
        }

        return value;
    }

    private void WriteFifoControl(byte value)
    {
        bool enable = (value & 0x01) != 0;
        if (enable != _fifoEnabled || (value & 0x02) != 0)
        {
            _receiveHead = 0;
            _receiveCount = 0;
            _lsr &= unchecked((byte)~LsrDataReady);
        }

        _fifoEnabled = enable;
        _triggerLevel = (value >> 6) switch
        {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        };
    }

    private byte ModemStatus()
    {
        if ((_mcr & McrLoopback) == 0)
        {
            return _msr;
        }

        // Loopback: CTS <- RTS, DSR <- DTR, RI <- OUT1, DCD <- OUT2.
        int m = _mcr;
        return (byte)(((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4));
    }

    private byte Identify()
    {
        byte fifo = _fifoEnabled ? IirFifosEnabled : (byte)0;
        if ((_ier & IerLineStatus) != 0 && (_lsr & LsrErrors) != 0)
        {
            return (byte)(fifo | IirLineStatus);
        }

        if ((_ier & IerReceive) != 0 && _receiveCount > 0)
        {
            // At or above the trigger level: data available; below it: a character timeout.
            bool triggered = !_fifoEnabled || _receiveCount >= _triggerLevel;
            return (byte)(fifo | (triggered ? IirReceiveData : IirCharacterTimeout));
        }

        if ((_ier & IerTransmitEmpty) != 0 && _transmitEmptyPending)
        {
            return (byte)(fifo | IirTransmitEmpty);
        }

        if ((_ier & IerModemStatus) != 0 && (ModemStatus() & 0x0F) != 0)
        {
            return (byte)(fifo | IirModemStatus);
        }

        return (byte)(fifo | IirNoInterrupt);
    }

    private void UpdateInterrupt()
    {
        bool line = (Identify() & IirNoInterrupt) == 0;
        if (line != _interruptLine)
        {
            _interruptLine = line;
            _interrupt(line);
        }
    }
}
