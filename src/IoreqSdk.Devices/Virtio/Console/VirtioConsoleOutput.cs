using System;
using System.IO;
using System.Threading;

namespace IoreqSdk.Devices.Virtio.Console;

/// <summary>
/// The console's writer: one preallocated off-loop item that writes a filled buffer to the host sink on the server's
/// worker, so a slow or blocking sink (a pipe, a terminal) never holds the event loop.
/// </summary>
internal sealed class VirtioConsoleOutput : OffLoopWork
{
    private readonly VirtioConsoleDevice _device;
    private readonly Stream _sink;

    public VirtioConsoleOutput(VirtioConsoleDevice device, Stream sink, int size)
    {
        _device = device;
        _sink = sink;
        Buffer = new byte[size];
    }

    /// <summary>The bytes to write: filled on the loop before the item is queued, read on the worker.</summary>
    public byte[] Buffer { get; }

    public int Count { get; set; }

    protected override void Execute(CancellationToken cancellationToken)
    {
        _sink.Write(Buffer, 0, Count);
        _sink.Flush();
    }

    protected override void Complete() => _device.OnOutputWritten(failed: false);

    protected override void Fail(Exception error) => _device.OnOutputWritten(failed: true);
}
