using System;
using System.IO;
using System.Threading;
using IoreqSdk.Virtio;

namespace IoreqSdk.Devices.Virtio.Console;

/// <summary>Host input: a bounded queue any thread fills, delivered into the guest's receive buffers on the loop.</summary>
public sealed partial class VirtioConsoleDevice
{
    // Bytes from the host waiting for receive buffers: a ring filled by any thread (SendToGuest, the input thread) and
    // drained on the loop (Deliver), under _inputLock — as the PCI serial port's host queue. _inputCount is read
    // without the lock only to skip the lock when nothing waits.
    private readonly byte[] _input = new byte[BufferSize];
    private readonly object _inputLock = new();
    private int _inputHead;
    private int _inputCount;
    private bool _deliverQueued;
    private long _droppedInput;
    private Thread? _inputThread;
    private volatile bool _stopInput;

    /// <summary>Host bytes waiting for the guest's receive buffers (at most <see cref="BufferSize"/>).</summary>
    public int BytesWaiting => Volatile.Read(ref _inputCount);

    /// <summary>Host input dropped because <see cref="BufferSize"/> bytes were already waiting (the guest posted no receive buffers).</summary>
    public long DroppedInputBytes => Interlocked.Read(ref _droppedInput);

    /// <summary>
    /// Sends bytes to the guest, from any thread, without blocking: as many as fit in the input queue are taken and
    /// delivered on the loop as the guest posts receive buffers.
    /// </summary>
    /// <param name="bytes">The bytes (copied).</param>
    /// <returns>How many were taken, from the start of <paramref name="bytes"/>; the rest is the caller's to drop or retry.</returns>
    public int SendToGuest(ReadOnlySpan<byte> bytes)
    {
        int taken;
        bool post;
        lock (_inputLock)
        {
            taken = Math.Min(bytes.Length, BufferSize - _inputCount);
            int tail = (_inputHead + _inputCount) % BufferSize;
            int first = Math.Min(taken, BufferSize - tail);
            bytes.Slice(0, first).CopyTo(_input.AsSpan(tail));
            bytes.Slice(first, taken - first).CopyTo(_input);
            _inputCount += taken;

            // One delivery waits in the loop's work queue at most, however often the host sends.
            post = taken > 0 && !_deliverQueued;
            _deliverQueued |= post;
        }

        if (post && !(_context is IDeviceContext context && context.TryPost(_deliverPosted)))
        {
            // Not on a server yet, or its work queue is full: the bytes wait for the guest's next receive kick.
            lock (_inputLock)
            {
                _deliverQueued = false;
            }
        }

        return taken;
    }

    /// <summary>
    /// Reads host input from <paramref name="input"/> on a thread of its own until it ends (or <see cref="Dispose"/>),
    /// sending it to the guest; what does not fit in the input queue is dropped and counted
    /// (<see cref="DroppedInputBytes"/>).
    /// </summary>
    /// <param name="input">The input (standard input, a pipe, a file).</param>
    public void StartInput(Stream input)
    {
        if (input is null)
        {
            throw new ArgumentNullException(nameof(input));
        }

        if (_inputThread is not null)
        {
            throw new InvalidOperationException("Input is already being read.");
        }

        _inputThread = new Thread(() => ReadInput(input)) { IsBackground = true, Name = "virtio-console input" };
        _inputThread.Start();
    }

    /// <summary>Waits for the input thread to end (its stream ended), at most <paramref name="timeout"/>.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>Whether it ended.</returns>
    public bool WaitForInputEnd(TimeSpan timeout) => _inputThread?.Join(timeout) ?? true;

    private void StopInput() => _stopInput = true;

    private void ReadInput(Stream input)
    {
        byte[] buffer = new byte[BufferSize];
        try
        {
            while (!_stopInput)
            {
                int n = input.Read(buffer, 0, buffer.Length);
                if (n <= 0)
                {
                    return;
                }

                int taken = SendToGuest(buffer.AsSpan(0, n));
                if (taken < n)
                {
                    Interlocked.Add(ref _droppedInput, n - taken);
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
        {
            // The input went away: nothing more to read. Nothing may escape this thread, which would end the process.
        }
    }

    private void DeliverPosted()
    {
        lock (_inputLock)
        {
            _deliverQueued = false;
        }

        Deliver();
    }

    /// <summary>Fills the guest's receive buffers with waiting input, on the loop.</summary>
    private void Deliver()
    {
        if (Volatile.Read(ref _inputCount) == 0)
        {
            return;
        }

        VirtioQueue queue = GetQueue(ReceiveQueue);
        bool pushed = false;
        while (Volatile.Read(ref _inputCount) > 0 && queue.TryPop(_receive))
        {
            if (_receive.WritableLength == 0)
            {
                MalformedBuffers++;
                queue.Push(_receive, 0);
                pushed = true;
                continue;
            }

            uint delivered = 0;
            bool failed = false;
            lock (_inputLock)
            {
                int count = (int)Math.Min((ulong)_inputCount, _receive.WritableLength);
                int first = Math.Min(count, BufferSize - _inputHead);
                failed = !_receive.TryWrite(0, _input.AsSpan(_inputHead, first))
                    || !_receive.TryWrite((ulong)first, _input.AsSpan(0, count - first));
                if (!failed)
                {
                    _inputHead = (_inputHead + count) % BufferSize;
                    _inputCount -= count;
                    delivered = (uint)count;
                }
            }

            if (failed)
            {
                // The buffer is not guest RAM: the input stays for the next buffer.
                MalformedBuffers++;
            }

            BytesReceived += delivered;
            queue.Push(_receive, delivered);
            pushed = true;
        }

        if (pushed)
        {
            queue.SignalUsed();
        }
    }
}
