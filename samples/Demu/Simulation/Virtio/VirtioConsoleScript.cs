using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using IoreqSdk.Devices.Virtio.Console;
using IoreqSdk.Simulation.Virtio;

namespace Demu.Simulation.Virtio;

/// <summary>
/// virtio-console as Linux's hvc driver uses port 0: receive buffers posted at probe, a line transmitted, a line typed
/// on the host side delivered into them. The host side is demu itself here (what a terminal would be on real Xen).
/// </summary>
internal sealed class VirtioConsoleScript : VirtioScript
{
    private static readonly byte[] Hello = Encoding.ASCII.GetBytes("hello from the guest's hvc0\n");
    private static readonly byte[] Typed = Encoding.ASCII.GetBytes("uname -a\n");

    private readonly VirtioConsoleDevice _console;
    private readonly MemoryStream _sink;

    public VirtioConsoleScript(VirtioConsoleDevice console, MemoryStream sink, TextWriter transcript)
        : base(transcript)
    {
        _console = console;
        _sink = sink;
    }

    public override ulong Features => 0;

    public override int QueueCount => 2;

    public override IEnumerable<(string Label, string Text)> Summary =>
        [("console", $"{_console.BytesWritten} bytes out to the host, {_console.BytesReceived} bytes in to the guest, {_console.DroppedInputBytes} dropped")];

    public override void Drive(SimulatedVirtioGuest guest)
    {
        // receiveq0 (queue 0) gets its buffer first, as hvc posts them at probe; transmitq0 is queue 1.
        ulong receive = guest.Driver.Allocate(128);
        guest.Driver.Submit(0, [new GuestBuffer(receive, 128, true)]);

        ulong transmit = guest.Driver.Allocate((ulong)Hello.Length);
        guest.Memory.TryWrite(transmit, Hello);
        uint length = Request(guest, 1, [new GuestBuffer(transmit, (uint)Hello.Length, false)], out _);
        bool written = SimulatedVirtioGuest.WaitUntil(() => _console.BytesWritten == Hello.Length);
        Check("transmit a line", length == 0 && written && _sink.ToArray().SequenceEqual(Hello),
            $"\"{Encoding.ASCII.GetString(Hello).TrimEnd()}\" reached the host's stream (written off the loop)");

        int queued = _console.SendToGuest(Typed);
        bool arrived = guest.Driver.WaitForUsed(0, out _, out uint received);
        Check("receive a line", queued == Typed.Length && arrived && received == Typed.Length && guest.Memory.Span(receive, Typed.Length).SequenceEqual((ReadOnlySpan<byte>)Typed),
            $"\"{Encoding.ASCII.GetString(Typed).TrimEnd()}\" typed on the host arrived in receiveq0 ({received} bytes)");
    }
}
