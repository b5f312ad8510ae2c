using System;
using System.Buffers.Binary;
using System.IO;
using System.Threading;
using IoreqSdk.Virtio;

namespace IoreqSdk.Devices.Virtio.Console;

/// <summary>
/// A virtio console (virtio 1.2 §5.3) with one port and no MULTIPORT: receiveq0 (queue 0) carries host input to the
/// guest, transmitq0 (queue 1) the guest's output to a host <see cref="Stream"/>. Optionally VIRTIO_CONSOLE_F_SIZE with
/// the console's columns and rows.
/// </summary>
/// <remarks>
/// <para>
/// Bounded both ways. Output: the guest's bytes are gathered on the loop into a buffer of
/// <see cref="BufferSize"/> bytes and written to the sink off the loop, one buffer at a time; while both the
/// gathering buffer and the one being written are full, the guest's transmit buffers wait in its ring (it is paced,
/// like the PCI serial port's bounded queue). Input: at most <see cref="BufferSize"/> bytes wait for receive buffers
/// the guest has not posted yet; more is dropped and counted (<see cref="DroppedInputBytes"/>).
/// </para>
/// <para>
/// Put it on a virtio transport and give it the transport's context (<see cref="AttachContext(IDeviceContext)"/>,
/// through <see cref="IDeviceContextConsumer"/>): the sink is written by the server's worker, input is posted to the loop.
/// </para>
/// </remarks>
public sealed partial class VirtioConsoleDevice : VirtioDevice, IDeviceContextConsumer, IDisposable
{
    /// <summary>The console's output and input bound, in bytes.</summary>
    public const int BufferSize = 4096;

    /// <summary>Buffers one pass over a queue takes at most; the rest is taken in a later pass, after the vCPUs' requests.</summary>
    public const int MaxBuffersPerPass = 256;

    /// <summary>
    /// Output bytes one pass takes at most (a transmit buffer may be up to 4 GiB a descriptor, and with no sink, or a
    /// worker that refuses the write, nothing else would end the pass); the rest is taken in a later pass.
    /// </summary>
    public const int MaxBytesPerPass = 64 * 1024;

    /// <summary>VIRTIO_CONSOLE_F_SIZE (0): <c>cols</c> and <c>rows</c> in the config are valid.</summary>
    public const ulong FeatureSize = 1UL << 0;

    private const ushort DeviceId = 3;
    private const int ReceiveQueue = 0;
    private const int TransmitQueue = 1;
    private const int ConsoleConfigSize = 12;

    private readonly VirtioConsoleOutput? _output;
    private readonly byte[] _gathered = new byte[BufferSize];
    private readonly VirtioDescriptorChain _transmit = new();
    private readonly VirtioDescriptorChain _receive = new();
    private readonly Action _deliverPosted;
    private IDeviceContext? _context;
    private int _gatheredCount;
    private ulong _transmitOffset;
    private bool _writing;

    /// <summary>Creates the console.</summary>
    /// <param name="output">Where the guest's output goes (written off the loop); <see langword="null"/> discards it.</param>
    /// <param name="columns">With <paramref name="rows"/>, the console size offered (VIRTIO_CONSOLE_F_SIZE); 0 offers none.</param>
    /// <param name="rows">The rows.</param>
    /// <param name="queueSize">Each queue's maximum size (1 to 32768; 64 by default).</param>
    public VirtioConsoleDevice(Stream? output, ushort columns = 0, ushort rows = 0, ushort queueSize = 64)
        : base(DeviceId, VirtioFeatures.Supported | (columns != 0 && rows != 0 ? FeatureSize : 0), new[] { queueSize, queueSize }, ConsoleConfigSize)
    {
        _output = output is null ? null : new VirtioConsoleOutput(this, output, BufferSize);
        _deliverPosted = DeliverPosted;
        Span<byte> config = Config;
        BinaryPrimitives.WriteUInt16LittleEndian(config, columns);
        BinaryPrimitives.WriteUInt16LittleEndian(config.Slice(2), rows);
        BinaryPrimitives.WriteUInt32LittleEndian(config.Slice(4), 1);
    }

    /// <summary>Bytes the guest transmitted (taken from its buffers).</summary>
    public long BytesTransmitted { get; private set; }

    /// <summary>Bytes of output written to the sink.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Output dropped: the sink failed (counted in <see cref="OutputErrors"/>) or the worker refused the write.</summary>
    public long DroppedOutputBytes { get; private set; }

    /// <summary>Writes to the sink that threw.</summary>
    public long OutputErrors { get; private set; }

    /// <summary>Bytes delivered into the guest's receive buffers.</summary>
    public long BytesReceived { get; private set; }

    /// <summary>Chains the guest posted that the device could not use (no bytes in the direction needed, or outside guest RAM): returned empty.</summary>
    public long MalformedBuffers { get; private set; }

    /// <inheritdoc/>
    public void AttachContext(IDeviceContext context)
    {
        if (context is null)
        {
            throw new ArgumentNullException(nameof(context));
        }

        if (_context is not null)
        {
            throw new InvalidOperationException("The device already has a context.");
        }

        _context = context;
    }

    /// <summary>Changes the console size the guest sees (a config change; VIRTIO_CONSOLE_F_SIZE must have been offered). On the loop.</summary>
    /// <param name="columns">The columns.</param>
    /// <param name="rows">The rows.</param>
    public void Resize(ushort columns, ushort rows)
    {
        if ((OfferedFeatures & FeatureSize) == 0)
        {
            throw new InvalidOperationException("The console was created without a size (VIRTIO_CONSOLE_F_SIZE not offered).");
        }

        Span<byte> size = stackalloc byte[4];
        BinaryPrimitives.WriteUInt16LittleEndian(size, columns);
        BinaryPrimitives.WriteUInt16LittleEndian(size.Slice(2), rows);
        ChangeConfig(0, size);
    }

    /// <summary>Stops reading host input (see <see cref="StartInput"/>); the sink is the caller's to close.</summary>
    public void Dispose() => StopInput();

    /// <inheritdoc/>
    protected override void OnQueueNotified(VirtioQueue queue)
    {
        if (queue.Index == ReceiveQueue)
        {
            Deliver();
        }
        else if (queue.Index == TransmitQueue)
        {
            Transmit();
        }
    }

    /// <inheritdoc/>
    protected override void OnDriverOk() => Deliver();

    /// <inheritdoc/>
    protected override void OnReset()
    {
        // The queues are reset: a transmit chain held part-way is stale (Push drops it without touching the ring).
        // Output already taken from the guest is still written; input waiting stays for the next driver.
        if (_transmit.IsOutstanding)
        {
            GetQueue(TransmitQueue).Push(_transmit, 0);
        }

        _transmitOffset = 0;

        // A write whose completion a stop of the server dropped: the writer is free again (the bytes are lost).
        if (_writing && _output is not null && !_output.IsInFlight)
        {
            _writing = false;
        }
    }

    /// <inheritdoc/>
    protected override void OnQueueDisabled(VirtioQueue queue)
    {
        // virtio-mmio's QueueReady = 0: a transmit buffer held part-way is the driver's again, and not one more byte
        // of it may be read (Push drops the stale chain without touching the ring). Output already taken is still
        // written.
        if (queue.Index == TransmitQueue && _transmit.IsOutstanding)
        {
            queue.Push(_transmit, 0);
            _transmitOffset = 0;
        }
    }

    /// <summary>The writer finished (on the loop): the next buffer may go, and transmit buffers waiting may be taken.</summary>
    internal void OnOutputWritten(bool failed)
    {
        VirtioConsoleOutput output = _output!;
        if (failed)
        {
            OutputErrors++;
            DroppedOutputBytes += output.Count;
        }
        else
        {
            BytesWritten += output.Count;
        }

        _writing = false;
        Transmit();
    }

    /// <summary>
    /// Takes the guest's output as far as the gathering buffer has room, returning each transmit buffer once all its
    /// bytes are taken, and hands a filled buffer to the writer when it is idle.
    /// </summary>
    private void Transmit()
    {
        VirtioQueue queue = GetQueue(TransmitQueue);
        bool pushed = false;
        int budget = MaxBuffersPerPass;
        int bytesLeft = MaxBytesPerPass;
        while (true)
        {
            if (bytesLeft <= 0)
            {
                // A guest posting huge buffers (or any, with no sink to pace it) must not hold the loop either.
                StartWrite();
                YieldPass(queue);
                return;
            }

            if (!_transmit.IsOutstanding)
            {
                if (budget-- == 0)
                {
                    // A guest re-posting empty or unmapped buffers as fast as they come back must not hold the loop.
                    StartWrite();
                    YieldPass(queue);
                    return;
                }

                if (!queue.TryPop(_transmit))
                {
                    break;
                }

                _transmitOffset = 0;
                if (_transmit.ReadableLength == 0)
                {
                    MalformedBuffers++;
                    queue.Push(_transmit, 0);
                    pushed = true;
                    continue;
                }
            }

            int room = BufferSize - _gatheredCount;
            if (room == 0)
            {
                if (!StartWrite())
                {
                    // The writer is busy with the previous buffer: the rest waits (in the chain, then in the ring).
                    break;
                }

                continue;
            }

            int take = (int)Math.Min((ulong)room, _transmit.ReadableLength - _transmitOffset);
            if (!_transmit.TryRead(_transmitOffset, _gathered.AsSpan(_gatheredCount, take)))
            {
                MalformedBuffers++;
                queue.Push(_transmit, 0);
                pushed = true;
                continue;
            }

            _gatheredCount += take;
            _transmitOffset += (ulong)take;
            BytesTransmitted += take;
            bytesLeft -= take;
            if (_transmitOffset == _transmit.ReadableLength)
            {
                // Transmit buffers are device-readable only: nothing written into them.
                queue.Push(_transmit, 0);
                pushed = true;
            }
        }

        StartWrite();
        if (pushed)
        {
            queue.SignalUsed();
        }
    }

    /// <summary>Hands the gathered bytes to the writer if it is idle; <see langword="false"/> if it is busy.</summary>
    private bool StartWrite()
    {
        if (_gatheredCount == 0)
        {
            return true;
        }

        if (_writing)
        {
            return false;
        }

        VirtioConsoleOutput? output = _output;
        if (output is null)
        {
            // No sink: the output is taken and discarded.
            _gatheredCount = 0;
            return true;
        }

        _gathered.AsSpan(0, _gatheredCount).CopyTo(output.Buffer);
        output.Count = _gatheredCount;
        _gatheredCount = 0;
        IDeviceContext? context = _context;
        if (context is not null && context.TryRunOffLoop(output))
        {
            _writing = true;
        }
        else
        {
            // No worker (not on a server, or it is full or stopping): dropping keeps the guest going rather than
            // holding its transmit buffers with nothing to wake the device later.
            DroppedOutputBytes += output.Count;
        }

        return true;
    }
}
