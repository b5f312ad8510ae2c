using System;
using System.Collections.Concurrent;
using System.IO;
using System.Threading;

namespace Demu;

/// <summary>
/// Carries what the guest transmits on its serial port to a stream (stdout, a file) from a thread of its own. The UART
/// transmits on the event loop; writing there would let a stream that blocks — a full pipe nobody reads, a paused
/// terminal — stall the loop, and with it every vCPU access to the device. Bounded: when the stream falls behind by
/// <see cref="Capacity"/> bytes, further bytes are dropped and counted (a host that does not read loses output, the
/// guest is never held).
/// </summary>
public sealed class SerialOutputPump : IDisposable
{
    /// <summary>The most bytes waiting for the stream.</summary>
    public const int Capacity = 64 * 1024;

    private readonly BlockingCollection<byte> _bytes = new(new ConcurrentQueue<byte>(), Capacity);
    private readonly Stream _stream;
    private readonly Thread _writer;
    private long _dropped;

    /// <summary>Starts the pump.</summary>
    /// <param name="stream">Where the bytes go (flushed at each newline and when the pump runs dry).</param>
    public SerialOutputPump(Stream stream)
    {
        _stream = stream ?? throw new ArgumentNullException(nameof(stream));
        _writer = new Thread(Run) { IsBackground = true, Name = "demu serial output" };
        _writer.Start();
    }

    /// <summary>Bytes dropped because the stream fell behind.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queues one byte; never blocks (the loop calls it).</summary>
    /// <param name="value">The byte.</param>
    public void Write(byte value)
    {
        if (!_bytes.TryAdd(value))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>Writes what is queued (waiting at most a second for a blocked stream), then stops.</summary>
    public void Dispose()
    {
        _bytes.CompleteAdding();
        _writer.Join(TimeSpan.FromSeconds(1));
    }

    private void Run()
    {
        try
        {
            foreach (byte b in _bytes.GetConsumingEnumerable())
            {
                _stream.WriteByte(b);
                if (b == (byte)'\n' || _bytes.Count == 0)
                {
                    _stream.Flush();
                }
            }
        }
        catch (IOException)
        {
            // The reader went away (a closed pipe): nothing more can be shown.
        }
        catch (ObjectDisposedException)
        {
            // The stream was closed at shutdown.
        }
    }
}
