using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Storage;
using IoreqSdk.Tests.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Blk;

/// <summary>
/// A virtio-blk device over a temporary image file, brought up as a driver does, with a guest driver per queue and
/// request builders (header, data segments, status byte). Off-loop work runs when the test says so.
/// </summary>
internal sealed class BlkRig : IDisposable
{
    public const ulong RamBase = 0x10_0000;
    public const int RamSize = 4 << 20;
    public const ulong Headers = RamBase + 0x2_0000;
    public const ulong Statuses = RamBase + 0x3_0000;
    public const ulong Data = RamBase + 0x4_0000;

    private readonly List<GuestVirtqueue> _drivers = new();

    public BlkRig(long imageSize, VirtioBlkOptions? options = null, ulong? features = null, bool packed = false, bool readOnlyFile = false, IoreqSdk.Devices.IDeviceContext? context = null, bool pinnable = false)
    {
        Path = System.IO.Path.Combine(TestContext.CurrentContext.WorkDirectory, $"blk-{Guid.NewGuid():N}.img");
        using (var file = new FileStream(Path, FileMode.CreateNew))
        {
            file.SetLength(imageSize);
        }

        Image = RawImageFile.Open(Path, readOnlyFile);
        Device = new VirtioBlkDevice(Image, options);
        Ram = new TestGuestRam(RamBase, RamSize, pinnable: pinnable);
        Transport = new TestTransport(Ram);
        Context = new ManualDeviceContext(Ram);
        Device.Attach(Transport);
        Device.AttachContext(context ?? Context);
        Features = ((features ?? (Device.OfferedFeatures & ~VirtioFeatures.RingPacked)) | VirtioFeatures.Version1 | (packed ? VirtioFeatures.RingPacked : 0)) & Device.OfferedFeatures;
        Packed = packed;
        Start();
    }

    public string Path { get; }

    public RawImageFile Image { get; }

    public VirtioBlkDevice Device { get; }

    public TestGuestRam Ram { get; }

    public TestTransport Transport { get; }

    public ManualDeviceContext Context { get; }

    public ulong Features { get; }

    public bool Packed { get; }

    public static ulong QueueArea(int queue) => RamBase + ((ulong)queue * 0x2000);

    public static ulong Header(int slot) => Headers + ((ulong)slot * 32);

    public static ulong Status(int slot) => Statuses + (ulong)slot;

    public GuestVirtqueue Driver(int queue) => _drivers[queue];

    /// <summary>Negotiates, sets up every queue, DRIVER_OK (again after a reset).</summary>
    public void Start()
    {
        _drivers.Clear();
        Device.WriteStatus((byte)VirtioDeviceStatus.Acknowledge);
        Device.WriteStatus((byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver));
        Device.WriteDriverFeatures(0, (uint)Features);
        Device.WriteDriverFeatures(1, (uint)(Features >> 32));
        Device.WriteStatus((byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk));
        for (int q = 0; q < Device.QueueCount; q++)
        {
            ulong area = QueueArea(q);
            ushort size = Device.GetQueue(q).MaxSize;

            // A driver allocates its rings zeroed.
            Ram.Span(area, 0x2000).Clear();
            Device.SetQueueSize(q, size);
            Device.SetQueueDescriptorArea(q, area);
            Device.SetQueueDriverArea(q, area + 0x800);
            Device.SetQueueDeviceArea(q, area + 0x1000);
            if (!Device.EnableQueue(q))
            {
                throw new InvalidOperationException($"queue {q} refused: {Device.GetQueue(q).Error}");
            }

            _drivers.Add(Packed
                ? new GuestPackedVirtqueue(Ram, size, area, area + 0x800, area + 0x1000)
                : new GuestSplitVirtqueue(Ram, size, area, area + 0x800, area + 0x1000, (Features & VirtioFeatures.EventIndex) != 0));
        }

        Device.WriteStatus((byte)(Device.Status | VirtioDeviceStatus.DriverOk));
    }

    public void Reset() => Device.WriteStatus(0);

    /// <summary>Posts header (type, sector), the given middle buffers and a 1-byte status; kicks if the driver must.</summary>
    public ushort Post(uint type, ulong sector, ReadOnlySpan<GuestBuffer> middle, int slot = 0, int queue = 0)
    {
        ulong header = Header(slot);
        Ram.SetU32(header, type);
        Ram.SetU32(header + 4, 0);
        Ram.SetU64(header + 8, sector);
        Ram.Span(Status(slot), 1)[0] = 0xFF;
        var buffers = new GuestBuffer[middle.Length + 2];
        buffers[0] = new GuestBuffer(header, 16, false);
        middle.CopyTo(buffers.AsSpan(1));
        buffers[^1] = new GuestBuffer(Status(slot), 1, true);
        return PostRaw(buffers, queue);
    }

    /// <summary>Posts exactly these buffers (a hostile layout) and kicks if the driver must.</summary>
    public ushort PostRaw(ReadOnlySpan<GuestBuffer> buffers, int queue = 0)
    {
        GuestVirtqueue driver = _drivers[queue];
        ushort id = driver.Post(buffers);
        if (driver.KickPrepare())
        {
            Device.NotifyQueue(queue);
        }

        return id;
    }

    public ushort Read(ulong sector, ulong address, uint length, int slot = 0, int queue = 0) =>
        Post(VirtioBlkTypes.In, sector, new[] { new GuestBuffer(address, length, true) }, slot, queue);

    public ushort Write(ulong sector, ulong address, uint length, int slot = 0, int queue = 0) =>
        Post(VirtioBlkTypes.Out, sector, new[] { new GuestBuffer(address, length, false) }, slot, queue);

    /// <summary>Writes ranges (sector, count, flags) into guest memory and posts a DISCARD or WRITE_ZEROES.</summary>
    public ushort Ranges(uint type, ReadOnlySpan<(ulong Sector, uint Count, uint Flags)> ranges, ulong address, int slot = 0)
    {
        for (int i = 0; i < ranges.Length; i++)
        {
            ulong at = address + ((ulong)i * 16);
            Ram.SetU64(at, ranges[i].Sector);
            Ram.SetU32(at + 8, ranges[i].Count);
            Ram.SetU32(at + 12, ranges[i].Flags);
        }

        return Post(type, 0, new[] { new GuestBuffer(address, (uint)(ranges.Length * 16), false) }, slot);
    }

    /// <summary>Runs the off-loop work to the end and returns the status byte of <paramref name="slot"/>.</summary>
    public byte Complete(int slot = 0)
    {
        Context.RunUntilIdle();
        return Ram.Span(Status(slot), 1)[0];
    }

    /// <summary>Takes every used buffer of a queue, in used-ring order.</summary>
    public List<(ushort Id, uint Length)> TakeUsed(int queue = 0)
    {
        var used = new List<(ushort, uint)>();
        while (_drivers[queue].TryTakeUsed(out ushort id, out uint length))
        {
            used.Add((id, length));
        }

        return used;
    }

    public byte[] FileBytes()
    {
        using var file = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[file.Length];
        file.ReadExactly(bytes);
        return bytes;
    }

    public void Dispose()
    {
        Device.Dispose();
        Image.Dispose();
        File.Delete(Path);
    }

    public static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        var random = new Random(seed);
        random.NextBytes(bytes);
        return bytes;
    }

    public static uint U32(ReadOnlySpan<byte> bytes) => BinaryPrimitives.ReadUInt32LittleEndian(bytes);
}

/// <summary>The request types and statuses, as a driver writes and reads them (virtio 1.2 §5.2.6).</summary>
internal static class VirtioBlkTypes
{
    public const uint In = 0;
    public const uint Out = 1;
    public const uint Flush = 4;
    public const uint GetId = 8;
    public const uint Discard = 11;
    public const uint WriteZeroes = 13;
    public const byte Ok = 0;
    public const byte IoError = 1;
    public const byte Unsupported = 2;
}
