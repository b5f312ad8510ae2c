using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;

namespace Demu.Simulation.Virtio;

/// <summary>virtio-rng as Linux's virtio_rng asks it for entropy, with the cases the specification names (a buffer past the device's cap, a zero-length one, a device-readable one).</summary>
internal sealed class VirtioRngScript : VirtioScript
{
    private readonly VirtioRng _rng;

    public VirtioRngScript(VirtioRng rng, TextWriter transcript)
        : base(transcript) => _rng = rng;

    public override ulong Features => VirtioFeatures.EventIndex;

    public override IEnumerable<(string Label, string Text)> Summary =>
        [("entropy", $"{_rng.BytesDelivered} bytes in {_rng.BuffersReturned} buffers ({_rng.ReadOnlyBuffers} device-readable refused)")];

    public override void Drive(SimulatedVirtioGuest guest)
    {
        ulong buffer = guest.Driver.Allocate(1 << 20);
        uint length = Request(guest, 0, [new GuestBuffer(buffer, 64, true)], out bool interrupted, awaitInterrupt: true);
        byte[] sample = guest.Memory.Span(buffer, 8).ToArray();
        Check("request 64 bytes", length == 64 && interrupted && guest.Memory.Span(buffer, 64).ToArray().Any(b => b != 0),
            $"{length} bytes after a used-buffer interrupt: {string.Concat(sample.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)))}...");

        length = Request(guest, 0, [new GuestBuffer(buffer, 1 << 20, true)], out _);
        Check("request 1 MiB", length == _rng.MaxBytesPerBuffer, $"{length} bytes: the device's cap per buffer (the spec lets it fill less)");

        length = Request(guest, 0, [new GuestBuffer(buffer, 0, true)], out _);
        Check("zero-length buffer", length == 0, "returned with length 0");

        length = Request(guest, 0, [new GuestBuffer(buffer, 16, false)], out _);
        Check("read-only buffer", length == 0 && _rng.ReadOnlyBuffers == 1, "returned with length 0, never read");
    }
}
