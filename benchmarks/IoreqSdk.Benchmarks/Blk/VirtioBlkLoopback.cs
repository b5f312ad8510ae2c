using System;
using System.Buffers.Binary;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using IoreqSdk.Abi;
using IoreqSdk.Benchmarks.Loopback;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Mmio;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Benchmarks.Blk;

/// <summary>
/// A virtio-blk disk end to end over the loopback Xen: a page-cached image file, <see cref="VirtioBlkDevice"/> (zero
/// copy, its own I/O thread) on <see cref="VirtioMmioTransport"/> at the first Arm64 virtio-mmio slot, an
/// <see cref="IoreqServer"/>, and guest RAM holding a split ring per queue (one to four) in the layout of
/// <c>native/blk_roundtrip.c</c>. The driver is set up here through MMIO round trips, as Linux's virtio_mmio probe does
/// it; then a guest — this class's own (<see cref="Read"/>, the simulated guest's ring writer, on queue 0), or the C
/// file's (<c>blk_guest_run</c> on queue 0; <c>blk_mq_guest_run</c>, a vCPU per queue) — posts one three-descriptor
/// read at a time per queue, kicks, and waits for the interrupt and the used entry.
/// </summary>
internal sealed unsafe class VirtioBlkLoopback : IDisposable
{
    // The layout: native/blk_roundtrip.c's defines, one for one.
    public const ulong RamBase = 0x4000_0000;
    public const int RamSize = 1 << 20;
    public const ushort QueueSize = 128;
    public const ulong DescriptorArea = RamBase + 0x0000;
    public const ulong DriverArea = RamBase + 0x1000;
    public const ulong DeviceArea = RamBase + 0x2000;
    public const ulong Header = RamBase + 0x3000;
    public const ulong Status = RamBase + 0x3010;
    public const ulong Data = RamBase + 0x1_0000;

    /// <summary>Queue q's rings, header and status are at q × this from queue 0's (blk_roundtrip.c's QUEUE_SPAN).</summary>
    public const ulong QueueSpan = 0x4000;

    /// <summary>The most queues the C side's layout holds (blk_roundtrip.c's MAX_QUEUES).</summary>
    public const int MaxQueues = 4;
    public const long ImageSize = 64L << 20;
    public const uint Spi = VirtioMmioTransport.Arm64FirstSpi;

    /// <summary>Where the loopback's registers are: the first virtio-mmio slot libxl gives an Arm guest.</summary>
    public static readonly ulong Mmio = VirtioMmioTransport.Arm64Address(0);

    private readonly LoopbackXen _xen;
    private readonly IoreqServer _server;
    private readonly VirtioBlkDevice _device;
    private readonly GuestSplitVirtqueue _queue;
    private readonly GuestBuffer[] _chain = new GuestBuffer[3];
    private uint _injections;
    private ulong _rng = 0x2545_F491_4F6C_DD1D;
    private ulong _next;
    private readonly int _queues;

    /// <param name="notification">How the slot, the server's wake-ups and the interrupt are signalled.</param>
    /// <param name="serverCpu">The CPU of the server's loop (-1: the scheduler's choice).</param>
    /// <param name="workerCpu">The CPU of the device's I/O thread (-1: the scheduler's choice).</param>
    /// <param name="queues">The device's request queues (VIRTIO_BLK_F_MQ when more than one), set up in blk_roundtrip.c's layout.</param>
    /// <param name="vcpus">The guest's vCPUs (slots): 1 for one guest thread, queues + 1 for blk_roundtrip.c's multi-queue guest.</param>
    public VirtioBlkLoopback(Notification notification, int serverCpu, int workerCpu, int queues = 1, int vcpus = 1)
    {
        if (queues is < 1 or > MaxQueues)
        {
            throw new ArgumentOutOfRangeException(nameof(queues), queues, $"1 to {MaxQueues} queues (blk_roundtrip.c's layout).");
        }

        if (vcpus is < 1 or > MaxQueues + 1)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpus), vcpus, $"1 to {MaxQueues + 1} vCPUs (blk_roundtrip.c's MAX_VCPUS).");
        }

        EnsureImage();
        _queues = queues;
        _xen = new LoopbackXen(GuestArchitecture.Arm64, vcpus, notification, serverCpu, RamBase, RamSize);
        _server = _xen.CreateServer();
        _device = VirtioBlkDevice.Open(ImagePath, new VirtioBlkOptions { ReadOnly = true, QueueCount = queues });
        _server.AddDevice(new VirtioMmioTransport(_device, Mmio, _server.CreateInterruptLine(Spi)));
        _server.Start();
        SetUpDriver();
        _queue = new GuestSplitVirtqueue(_xen.GuestRam, QueueSize, DescriptorArea, DriverArea, DeviceArea, eventIndex: false);
        _chain[0] = new GuestBuffer(Header, 16, deviceWritable: false);
        _chain[2] = new GuestBuffer(Status, 1, deviceWritable: true);

        // A broken path must not look fast: the first requests are compared, byte for byte, with the file.
        Check(0, 64 * 1024);
        Check(ImageSize - 4096, 4096);
        Check(12_345 * 4096, 4096);
        if (workerCpu >= 0)
        {
            // The device's I/O thread exists now (it starts at the first request): pinned where C pins its worker.
            ThreadAffinity.PinThreadNamed("virtio-blk io", workerCpu);
        }
    }

    /// <summary>The image both sides read: 64 MiB in the temporary directory, written once with <see cref="Pattern"/>.</summary>
    public static string ImagePath { get; } = Path.Combine(Path.GetTempPath(), "ioreqsdk-bench-blk.img");

    public LoopbackXen Xen => _xen;

    /// <summary>The device's requests completed with OK.</summary>
    public long CompletedRequests => _device.CompletedRequests;

    /// <summary>The image's 64-bit word at byte <paramref name="offset"/> (a multiple of 8), as blk_roundtrip.c's pattern().</summary>
    public static ulong Pattern(ulong offset) => (offset + 1) * 0x9E37_79B9_7F4A_7C15UL;

    /// <summary>The next block of a fixed pseudo-random sequence (blk_roundtrip.c's xorshift64), as a byte offset.</summary>
    public ulong NextRandom(uint block)
    {
        ulong x = _rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        _rng = x;
        return (x >> 11) % (ulong)(ImageSize / block) * block;
    }

    /// <summary>The next block in order, as a byte offset.</summary>
    public ulong NextSequential(uint block) => _next++ % (ulong)(ImageSize / block) * block;

    /// <summary>One read of <paramref name="block"/> bytes at <paramref name="offset"/>, end to end, by this class's guest.</summary>
    /// <returns>Whether it came back right: status OK, the length, the interrupt, the data's first and last words.</returns>
    public bool Read(ulong offset, uint block)
    {
        LoopbackGuestRam ram = _xen.GuestRam;
        byte* header = ram.At(Header);
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(header, 4), 0);   // VIRTIO_BLK_T_IN
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(header + 4, 4), 0);
        BinaryPrimitives.WriteUInt64LittleEndian(new Span<byte>(header + 8, 8), offset >> 9);
        *ram.At(Status) = 0xFF;
        _chain[1] = new GuestBuffer(Data, block, deviceWritable: true);

        // The ring writer publishes avail.idx after the entry; the kick's release of READY orders both before the device looks.
        _queue.Post(_chain);
        _xen.RoundTrip(0, IoreqType.Copy, Mmio + R.QueueNotify, 4, write: true, 0);
        _injections = _xen.Channel.AwaitGuestInterrupt(_injections);
        ulong isr = _xen.RoundTrip(0, IoreqType.Copy, Mmio + R.InterruptStatus, 4, write: false, 0);
        _xen.RoundTrip(0, IoreqType.Copy, Mmio + R.InterruptAck, 4, write: true, isr);
        if (!_queue.TryTakeUsed(out _, out uint length))
        {
            return false;
        }

        byte* data = ram.At(Data);
        return (isr & R.InterruptUsedBuffer) != 0
            && length == block + 1
            && *ram.At(Status) == VirtioBlkStatusOk
            && *(ulong*)data == Pattern(offset)
            && *(ulong*)(data + block - 8) == Pattern(offset + block - 8);
    }

    public void Dispose()
    {
        _server.Dispose();
        _device.Dispose();
        _xen.Dispose();
    }

    private const byte VirtioBlkStatusOk = 0;

    /// <summary>Writes the image if it is not there (or not this pattern), then reads it all once: page-cached before timing.</summary>
    private static void EnsureImage()
    {
        var info = new FileInfo(ImagePath);
        byte[] chunk = new byte[1 << 20];
        if (!info.Exists || info.Length != ImageSize || !HasPattern())
        {
            string partial = ImagePath + "." + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write))
            {
                for (long start = 0; start < ImageSize; start += chunk.Length)
                {
                    Span<ulong> words = MemoryMarshal.Cast<byte, ulong>(chunk.AsSpan());
                    for (int i = 0; i < words.Length; i++)
                    {
                        words[i] = Pattern((ulong)start + ((ulong)i * 8));
                    }

                    file.Write(chunk);
                }
            }

            // Renamed into place: a concurrent run (BenchmarkDotNet's child) sees a whole image or none.
            File.Move(partial, ImagePath, overwrite: true);
        }

        using var read = new FileStream(ImagePath, FileMode.Open, FileAccess.Read);
        while (read.Read(chunk) > 0)
        {
        }
    }

    private static bool HasPattern()
    {
        using var file = new FileStream(ImagePath, FileMode.Open, FileAccess.Read);
        Span<byte> word = stackalloc byte[8];
        foreach (long offset in new[] { 0L, ImageSize / 2, ImageSize - 8 })
        {
            file.Position = offset;
            file.ReadExactly(word);
            if (BinaryPrimitives.ReadUInt64LittleEndian(word) != Pattern((ulong)offset))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Reads through the device and compares every byte with the file's.</summary>
    private void Check(long offset, uint block)
    {
        if (!Read((ulong)offset, block))
        {
            throw new InvalidOperationException(FormattableString.Invariant($"The virtio-blk read of {block} bytes at {offset} came back wrong."));
        }

        byte[] expected = new byte[block];
        using (var file = new FileStream(ImagePath, FileMode.Open, FileAccess.Read))
        {
            file.Position = offset;
            file.ReadExactly(expected);
        }

        if (!new ReadOnlySpan<byte>(_xen.GuestRam.At(Data), (int)block).SequenceEqual(expected))
        {
            throw new InvalidOperationException(FormattableString.Invariant($"The virtio-blk read of {block} bytes at {offset} differs from the image."));
        }
    }

    /// <summary>Linux's virtio_mmio probe and virtio_blk's setup, register by register (virtio 1.2 §3.1.1, §4.2.3).</summary>
    private void SetUpDriver()
    {
        Expect(ReadRegister(R.MagicValue) == R.MagicValueExpected && ReadRegister(R.Version) == R.VersionModern && ReadRegister(R.DeviceId) == 2, "a virtio-mmio v2 block device");
        WriteRegister(R.Status, 0);
        WriteRegister(R.Status, (uint)VirtioDeviceStatus.Acknowledge);
        WriteRegister(R.Status, (uint)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver));
        WriteRegister(R.DeviceFeaturesSel, 1);
        Expect((ReadRegister(R.DeviceFeatures) & (uint)(VirtioFeatures.Version1 >> 32)) != 0, "VIRTIO_F_VERSION_1 offered");
        WriteRegister(R.DeviceFeaturesSel, 0);
        uint multiQueue = _queues > 1 ? (uint)VirtioBlkFeatures.MultiQueue : 0;
        Expect((ReadRegister(R.DeviceFeatures) & multiQueue) == multiQueue, "VIRTIO_BLK_F_MQ offered");
        WriteRegister(R.DriverFeaturesSel, 0);
        WriteRegister(R.DriverFeatures, multiQueue);
        WriteRegister(R.DriverFeaturesSel, 1);
        WriteRegister(R.DriverFeatures, (uint)(VirtioFeatures.Version1 >> 32));
        const VirtioDeviceStatus Negotiated = VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk;
        WriteRegister(R.Status, (uint)Negotiated);
        Expect((ReadRegister(R.Status) & (uint)VirtioDeviceStatus.FeaturesOk) != 0, "FEATURES_OK accepted");
        for (int queue = 0; queue < _queues; queue++)
        {
            ulong span = (ulong)queue * QueueSpan;
            WriteRegister(R.QueueSel, (uint)queue);
            Expect(ReadRegister(R.QueueNumMax) >= QueueSize, "a queue of 128 entries");
            WriteRegister(R.QueueNum, QueueSize);
            WriteRegister(R.QueueDescLow, (uint)(DescriptorArea + span));
            WriteRegister(R.QueueDescHigh, (uint)((DescriptorArea + span) >> 32));
            WriteRegister(R.QueueDriverLow, (uint)(DriverArea + span));
            WriteRegister(R.QueueDriverHigh, (uint)((DriverArea + span) >> 32));
            WriteRegister(R.QueueDeviceLow, (uint)(DeviceArea + span));
            WriteRegister(R.QueueDeviceHigh, (uint)((DeviceArea + span) >> 32));
            WriteRegister(R.QueueReady, 1);
        }

        WriteRegister(R.Status, (uint)(Negotiated | VirtioDeviceStatus.DriverOk));
        Expect(ReadRegister(R.Status) == (uint)(Negotiated | VirtioDeviceStatus.DriverOk), "DRIVER_OK");
    }

    private uint ReadRegister(int offset) => (uint)_xen.RoundTrip(0, IoreqType.Copy, Mmio + (ulong)offset, 4, write: false, 0);

    private void WriteRegister(int offset, uint value) => _xen.RoundTrip(0, IoreqType.Copy, Mmio + (ulong)offset, 4, write: true, value);

    private static void Expect(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException($"The virtio-blk setup failed: expected {what}.");
        }
    }
}
