using System;
using System.IO;
using System.Threading;
using IoreqSdk.Virtio;

namespace IoreqSdk.Devices.Virtio.Console;

/// <summary>Host input: a bounded queue any thread fills, delivered into the guest's receive buffers on the loop.</summary>
public sealed partial class VirtioConsoleDevice
{
    // Bytes from the host waiting for receive buffers: filled by any thread (SendToGuest, the input thread), drained on
    // the loop (Deliver) — the PCI serial port's host queue, the same class.
    private readonly HostByteQueue _input = new(BufferSize);

    // Deliver copies through this (one receive buffer's worth at most) and takes the bytes only once the guest has them.
    private readonly byte[] _delivering = new byte[BufferSize];
    private long _droppedInput;
    private Thread? _inputThread;
    private volatile bool _stopInput;

    /// <summary>Host bytes waiting for the guest's receive buffers (at most <see cref="BufferSize"/>).</summary>
    public int BytesWaiting => _input.Count;

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
        IDeviceContext? context = _context;
        int taken = _input.Enqueue(bytes, context?.RunNumber ?? 0, out bool schedule);
        if (schedule && !(context is not null && context.TryPost(_deliverPosted)))
        {
            // Not on a server yet, or its work queue is full: the bytes wait for the guest's next receive kick.
            _input.Unschedule();
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
        _input.Unschedule();
        Deliver();
    }

    /// <summary>Fills the guest's receive buffers with waiting input, on the loop.</summary>
    private void Deliver()
    {
        if (_input.Count == 0)
        {
            return;
        }

        VirtioQueue queue = GetQueue(ReceiveQueue);
        bool pushed = false;
        int budget = MaxBuffersPerPass;
        while (_input.Count > 0)
        {
            if (budget-- == 0)
            {
                // Buffers that take no input (no writable part, not RAM) come back at once: bounded per pass.
                YieldPass(queue);
                return;
            }

            if (!queue.TryPop(_receive))
            {
                break;
            }

            if (_receive.WritableLength == 0)
            {
                MalformedBuffers++;
                queue.Push(_receive, 0);
                pushed = true;
                continue;
            }

            // Copied out, written into the buffer, and taken from the queue only once it is in guest memory.
            int count = _input.Peek(_delivering.AsSpan(0, (int)Math.Min((ulong)_delivering.Length, _receive.WritableLength)));
            bool failed = !_receive.TryWrite(0, _delivering.AsSpan(0, count));
            uint delivered = 0;
            if (!failed)
            {
                _input.Consume(count);
                delivered = (uint)count;
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
