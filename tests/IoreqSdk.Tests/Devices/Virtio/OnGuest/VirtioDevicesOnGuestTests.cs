using System;
using System.Buffers.Binary;
using System.IO;
using System.Security.Cryptography;
using System.Text;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Devices.Virtio.Console;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.OnGuest;

/// <summary>
/// The library's virtio devices, unchanged, on a simulated guest's transports as a Linux driver reaches them — every
/// request a vCPU access to the transport, every buffer in guest RAM, the devices' I/O on the server's own threads.
/// </summary>
[TestFixture(GuestArchitecture.X86, VirtioTransportKind.Mmio)]
[TestFixture(GuestArchitecture.Arm64, VirtioTransportKind.Mmio)]
[TestFixture(GuestArchitecture.X86, VirtioTransportKind.Pci)]
[TestFixture(GuestArchitecture.Arm64, VirtioTransportKind.Pci)]
public sealed class VirtioDevicesOnGuestTests
{
    private const uint BlkIn = 0;
    private const uint BlkOut = 1;
    private const uint BlkFlush = 4;
    private const int ImageSize = 4 << 20;

    private readonly GuestArchitecture _architecture;
    private readonly VirtioTransportKind _transport;
    private string _image = null!;

    public VirtioDevicesOnGuestTests(GuestArchitecture architecture, VirtioTransportKind transport)
    {
        _architecture = architecture;
        _transport = transport;
    }

    [SetUp]
    public void CreateImage()
    {
        _image = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"onguest-{Guid.NewGuid():N}.img");
        using FileStream file = File.Create(_image);
        file.SetLength(ImageSize);
    }

    [TearDown]
    public void DeleteImage() => File.Delete(_image);

    [Test]
    public void Blk_writes_across_pages_and_beyond_1_MiB_read_back_and_reach_the_file_after_a_flush([Values] bool zeroCopy)
    {
        byte[] written = new byte[ImageSize];
        using (VirtioBlkDevice blk = VirtioBlkDevice.Open(_image, new VirtioBlkOptions { ZeroCopy = zeroCopy }))
        using (SimulatedVirtioGuest guest = SimulatedVirtioGuest.Create(blk, _transport, _architecture, features: VirtioFeatures.EventIndex | (1UL << 9)))
        {
            Assert.That(guest.Driver.Features & (1UL << 9), Is.Not.Zero, "VIRTIO_BLK_F_FLUSH negotiated");
            var random = new Random(1234);

            // Offsets in sectors: the first, across a 4 KiB page, beyond 1 MiB, near the end; 12 KiB each, so each
            // request crosses guest pages too.
            foreach (long sector in new long[] { 0, 7, 2048 + 3, (ImageSize / 512) - 24 })
            {
                byte[] data = new byte[12 * 1024];
                random.NextBytes(data);
                Assert.That(Request(guest, BlkOut, (ulong)sector, data, toDevice: true), Is.EqualTo(0), $"write at sector {sector}");
                data.CopyTo(written, sector * 512);
            }

            Assert.That(Request(guest, BlkFlush, 0, Array.Empty<byte>(), toDevice: true), Is.EqualTo(0), "flush");

            foreach (long sector in new long[] { 0, 7, 2048 + 3, (ImageSize / 512) - 24 })
            {
                byte[] back = new byte[12 * 1024];
                Assert.That(Request(guest, BlkIn, (ulong)sector, back, toDevice: false), Is.EqualTo(0), $"read at sector {sector}");
                Assert.That(back, Is.EqualTo(written.AsSpan((int)(sector * 512), back.Length).ToArray()), $"the bytes at sector {sector}");
            }

            // The server's guest memory pins: with zero copy on, every read and write went straight between the
            // image and the guest's pages (the worker's preadv/pwritev), none through the bounce buffer.
            Assert.That(blk.ZeroCopyRequests, Is.EqualTo(zeroCopy ? 8 : 0));
            Assert.That(guest.Server.Statistics.GuestMemoryPins, zeroCopy ? Is.GreaterThanOrEqualTo(8) : Is.Zero, "the server counts the pieces pinned");
            Assert.That(guest.Server.Statistics.GuestFrameMaps, Is.GreaterThan(0), "the rings and headers go through the per-frame cache");
        }

        // The server is gone and the file closed: what the file holds is what the guest wrote.
        Assert.That(SHA256.HashData(File.ReadAllBytes(_image)), Is.EqualTo(SHA256.HashData(written)));
    }

    [Test]
    public void Blk_reports_the_image_capacity_in_its_config_space()
    {
        using VirtioBlkDevice blk = VirtioBlkDevice.Open(_image);
        using SimulatedVirtioGuest guest = SimulatedVirtioGuest.Create(blk, _transport, _architecture);
        byte[] capacity = new byte[8];
        guest.Driver.ReadConfig(0, capacity);
        Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(capacity), Is.EqualTo((ulong)(ImageSize / 512)));
    }

    [Test]
    public void Console_bytes_the_guest_transmits_reach_the_sink_and_host_input_reaches_the_guest()
    {
        using var sink = new MemoryStream();
        using var console = new VirtioConsoleDevice(sink);
        using SimulatedVirtioGuest guest = SimulatedVirtioGuest.Create(console, _transport, _architecture, queueCount: 2);

        // receiveq0 (queue 0) gets a buffer first, as Linux's hvc driver posts them at probe.
        ulong receive = guest.Driver.Allocate(64);
        ushort receiveId = guest.Driver.Submit(0, new GuestBuffer[] { new(receive, 64, true) });
        guest.Driver.Kick(0);

        byte[] hello = Encoding.ASCII.GetBytes("hello from the guest\n");
        ulong transmit = guest.Driver.Allocate((ulong)hello.Length);
        Assert.That(guest.Memory.TryWrite(transmit, hello), Is.True);
        ushort transmitId = guest.Driver.Submit(1, new GuestBuffer[] { new(transmit, (uint)hello.Length, false) });
        guest.Driver.Kick(1);
        Assert.That(TakeUsed(guest, 1).Id, Is.EqualTo(transmitId));
        Assert.That(SimulatedVirtioGuest.WaitUntil(() => console.BytesWritten == hello.Length), Is.True, "the sink is written off the loop");

        byte[] input = Encoding.ASCII.GetBytes("ls\n");
        Assert.That(console.SendToGuest(input), Is.EqualTo(input.Length));
        (ushort id, uint length) = TakeUsed(guest, 0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(sink.ToArray(), Is.EqualTo(hello));
            Assert.That(id, Is.EqualTo(receiveId));
            Assert.That(length, Is.EqualTo((uint)input.Length));
            Assert.That(guest.Memory.Span(receive, input.Length).ToArray(), Is.EqualTo(input));
        }
    }

    /// <summary>One virtio-blk request as Linux's driver builds it: header, data, status byte; returns the status.</summary>
    private static int Request(SimulatedVirtioGuest guest, uint type, ulong sector, byte[] data, bool toDevice)
    {
        ulong header = guest.Driver.Allocate(16);
        ulong buffer = data.Length == 0 ? 0 : guest.Driver.Allocate((ulong)data.Length, 512);
        ulong status = guest.Driver.Allocate(1);
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, type);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.Slice(8), sector);
        Assert.That(guest.Memory.TryWrite(header, bytes), Is.True);
        guest.Memory.Span(status, 1)[0] = 0xFF;
        if (toDevice && data.Length != 0)
        {
            Assert.That(guest.Memory.TryWrite(buffer, data), Is.True);
        }

        GuestBuffer[] chain = data.Length == 0
            ? [new(header, 16, false), new(status, 1, true)]
            : [new(header, 16, false), new(buffer, (uint)data.Length, !toDevice), new(status, 1, true)];
        ushort id = guest.Driver.Submit(0, chain);
        guest.Driver.Kick(0);
        (ushort usedId, _) = TakeUsed(guest, 0);
        Assert.That(usedId, Is.EqualTo(id));
        if (!toDevice)
        {
            guest.Memory.Span(buffer, data.Length).CopyTo(data);
        }

        return guest.Memory.Span(status, 1)[0];
    }

    private static (ushort Id, uint Length) TakeUsed(SimulatedVirtioGuest guest, int queue)
    {
        Assert.That(guest.Driver.WaitForUsed(queue, out ushort id, out uint length), Is.True, $"the device returned the buffer on queue {queue}");
        return (id, length);
    }
}
