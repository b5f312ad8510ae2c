using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;

namespace Demu.Simulation.Virtio;

/// <summary>
/// virtio-blk as Linux's virtio_blk drives it: capacity and serial from the device, writes of a known pattern across
/// guest pages and beyond 1 MiB, a flush, the same sectors read back, a read past the end refused — and, once the
/// server is gone, the image file itself compared with what the guest wrote.
/// </summary>
internal sealed class VirtioBlkScript : VirtioScript
{
    private const int Chunk = 16 * 1024;

    // The driver's side of virtio 1.2 §5.2.6, written from the specification as Linux's driver is (not taken from the device).
    private const int SectorSize = 512;
    private const int HeaderSize = 16;
    private const int IdBytes = 20;
    private const uint TypeIn = 0;
    private const uint TypeOut = 1;
    private const uint TypeFlush = 4;
    private const uint TypeGetId = 8;
    private const byte StatusOk = 0;
    private const byte StatusIoError = 1;

    private readonly VirtioBlkDevice _blk;
    private readonly string _image;
    private readonly bool _readOnly;
    private readonly List<(long Offset, byte[] Bytes)> _written = new();

    public VirtioBlkScript(VirtioBlkDevice blk, string image, bool readOnly, TextWriter transcript)
        : base(transcript)
    {
        _blk = blk;
        _image = image;
        _readOnly = readOnly;
    }

    public override ulong Features => VirtioFeatures.EventIndex | VirtioBlkFeatures.Flush | VirtioBlkFeatures.SegMax | VirtioBlkFeatures.BlockSize;

    public override IEnumerable<(string Label, string Text)> Summary =>
        [("disk", $"{_blk.CompletedRequests} requests completed ({_blk.ZeroCopyRequests} zero-copy), {_blk.FailedRequests} failed, {_blk.UnsupportedRequests} unsupported, {_blk.MalformedRequests} malformed; image {_image}")];

    public override void Drive(SimulatedVirtioGuest guest)
    {
        Span<byte> config = stackalloc byte[8];
        guest.Driver.ReadConfig(0, config); // capacity: le64 sectors at offset 0
        ulong capacity = BinaryPrimitives.ReadUInt64LittleEndian(config);
        Check("capacity", capacity == (ulong)new FileInfo(_image).Length / SectorSize,
            $"{capacity} sectors ({capacity / 2048} MiB){(_readOnly ? ", read-only" : string.Empty)}");

        byte[] id = new byte[IdBytes];
        byte status = Transfer(guest, TypeGetId, 0, id, toDevice: false);
        Check("get id", status == StatusOk, $"serial \"{Encoding.ASCII.GetString(id).TrimEnd('\0')}\"");

        // Sector 1 (the chunk crosses guest pages), beyond 1 MiB at an odd sector, and the last chunk of the disk.
        // (Those that fit: a small image gets fewer; one smaller than a chunk gets none, and the check says so.)
        const long ChunkSectors = Chunk / SectorSize;
        long[] sectors = new long[] { 1, 2048 + 7, (long)capacity - ChunkSectors }
            .Where(s => s >= 0 && (ulong)(s + ChunkSectors) <= capacity).Distinct().ToArray();
        var random = new Random(2026);
        bool allWritten = true;
        foreach (long sector in sectors)
        {
            byte[] pattern = new byte[Chunk];
            random.NextBytes(pattern);
            status = Transfer(guest, TypeOut, (ulong)sector, pattern, toDevice: true);
            allWritten &= status == (_readOnly ? StatusIoError : StatusOk);
            if (!_readOnly)
            {
                _written.Add((sector * SectorSize, pattern));
            }
        }

        if (sectors.Length == 0)
        {
            Check("write", false, $"the disk ({capacity} sectors) is smaller than one {Chunk / 1024} KiB pattern: give demu an image of at least 1 MiB");
            return;
        }

        Check("write", allWritten, _readOnly
            ? "the read-only disk refuses every write (IOERR)"
            : $"{sectors.Length} x {Chunk / 1024} KiB at sectors {string.Join(", ", sectors)}");

        status = Transfer(guest, TypeFlush, 0, Array.Empty<byte>(), toDevice: true);
        Check("flush", status == StatusOk, _readOnly ? "answered OK: nothing was written" : "the writes reached the file (fdatasync)");

        bool same = true;
        foreach ((long offset, byte[] pattern) in _written)
        {
            byte[] back = new byte[Chunk];
            same &= Transfer(guest, TypeIn, (ulong)(offset / SectorSize), back, toDevice: false) == StatusOk
                && back.AsSpan().SequenceEqual(pattern);
        }

        if (!_readOnly)
        {
            Check("read back", same, "every written sector reads back what was written");
        }

        status = Transfer(guest, TypeIn, capacity, new byte[SectorSize], toDevice: false);
        Check("read past the end", status == StatusIoError, $"sector {capacity} refused with IOERR");
    }

    public override void AfterStop()
    {
        if (_readOnly)
        {
            return;
        }

        // The server is gone and the image closed: the file holds what the guest wrote, where it wrote it.
        using FileStream file = File.OpenRead(_image);
        bool same = true;
        foreach ((long offset, byte[] pattern) in _written)
        {
            byte[] inFile = new byte[pattern.Length];
            file.Position = offset;
            file.ReadExactly(inFile);
            same &= SHA256.HashData(inFile).AsSpan().SequenceEqual(SHA256.HashData(pattern));
        }

        Check("image file", same, $"SHA-256 of each written range in {Path.GetFileName(_image)} equals the guest's data");
    }

    /// <summary>One request as virtio_blk builds it — header, data, status byte — on queue 0; returns the status the device wrote.</summary>
    private static byte Transfer(SimulatedVirtioGuest guest, uint type, ulong sector, byte[] data, bool toDevice)
    {
        ulong header = guest.Driver.Allocate(HeaderSize);
        ulong buffer = data.Length == 0 ? 0 : guest.Driver.Allocate((ulong)data.Length, 512);
        ulong status = guest.Driver.Allocate(1);
        Span<byte> bytes = stackalloc byte[HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, type);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.Slice(8), sector);
        guest.Memory.TryWrite(header, bytes);
        guest.Memory.Span(status, 1)[0] = 0xFF;
        if (toDevice && data.Length != 0)
        {
            guest.Memory.TryWrite(buffer, data);
        }

        GuestBuffer[] chain = data.Length == 0
            ? [new(header, HeaderSize, false), new(status, 1, true)]
            : [new(header, HeaderSize, false), new(buffer, (uint)data.Length, !toDevice), new(status, 1, true)];
        if (Request(guest, 0, chain, out _) == uint.MaxValue)
        {
            return 0xFF;
        }

        if (!toDevice && data.Length != 0)
        {
            guest.Memory.Span(buffer, data.Length).CopyTo(data);
        }

        return guest.Memory.Span(status, 1)[0];
    }
}
