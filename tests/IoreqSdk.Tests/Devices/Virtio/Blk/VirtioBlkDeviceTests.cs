using System;
using System.Buffers.Binary;
using System.Security.Cryptography;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Blk;

/// <summary>virtio-blk (virtio 1.2 §5.2) driven through its rings: data, flush, config, multiqueue, ordering, reset.</summary>
[TestFixture]
public sealed class VirtioBlkDeviceTests
{
    private const long ImageSize = 8 << 20;

    [Test]
    public void TheConfigSpaceIsByteExact()
    {
        var options = new VirtioBlkOptions { QueueCount = 4, MaxSegments = 60, BlockSize = 4096, MaxRangeSectors = 2048, MaxRanges = 8 };
        using var rig = new BlkRig(ImageSize + 100, options);
        byte[] config = new byte[rig.Device.ConfigSize];
        rig.Device.ReadConfig(0, config);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Device.DeviceType, Is.EqualTo(2));
            Assert.That(config, Has.Length.EqualTo(72), "struct virtio_blk_config up to secure_erase_sector_alignment");
            Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(config), Is.EqualTo((ulong)(ImageSize / 512)), "capacity in 512-byte sectors, rounded down");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(8)), Is.Zero, "size_max (not offered)");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(12)), Is.EqualTo(60), "seg_max");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(20)), Is.EqualTo(4096), "blk_size");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(config.AsSpan(34)), Is.EqualTo(4), "num_queues");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(36)), Is.EqualTo(2048), "max_discard_sectors");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(40)), Is.EqualTo(8), "max_discard_seg");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(44)), Is.EqualTo(8), "discard_sector_alignment: blk_size in sectors");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(48)), Is.EqualTo(2048), "max_write_zeroes_sectors");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(52)), Is.EqualTo(8), "max_write_zeroes_seg");
            Assert.That(config[56], Is.EqualTo(1), "write_zeroes_may_unmap");
            Assert.That(config.AsSpan(57, 15).ToArray(), Is.All.Zero, "unused1 and the secure-erase fields");
            Assert.That(rig.Device.OfferedFeatures, Is.EqualTo(VirtioFeatures.Supported | VirtioBlkFeatures.SegMax | VirtioBlkFeatures.BlockSize
                | VirtioBlkFeatures.Flush | VirtioBlkFeatures.MultiQueue | VirtioBlkFeatures.Discard | VirtioBlkFeatures.WriteZeroes));
            Assert.That(rig.Device.QueueCount, Is.EqualTo(4));
        }
    }

    [Test]
    public void APatternWrittenAcrossPagesAndBeyondOneMebibyteReadsBackAndTheFlushedFileHashesEqual([Values] bool packed)
    {
        using var rig = new BlkRig(ImageSize, packed: packed);
        var expected = new byte[ImageSize];

        // Sector offsets: the start, across the first 4 KiB page, beyond 1 MiB, the last sectors; lengths up to more
        // than three bounce buffers (several off-loop steps); guest buffers split in segments that straddle pages.
        (ulong Sector, int Length)[] writes = { (0, 512), (7, 4096), (2048 + 3, 12_288), (4096 + 1, 200 * 1024), ((ImageSize / 512) - 16, 8192) };
        int seed = 1;
        foreach ((ulong sector, int length) in writes)
        {
            byte[] pattern = BlkRig.Pattern(length, seed++);
            pattern.CopyTo(expected, (long)sector * 512);
            ulong at = BlkRig.Data + 0xF00;
            pattern.CopyTo(rig.Ram.Span(at, length));
            int first = Math.Min(length, 0x300);
            GuestBuffer[] data = first == length
                ? new[] { new GuestBuffer(at, (uint)length, false) }
                : new[] { new GuestBuffer(at, (uint)first, false), new GuestBuffer(at + (ulong)first, (uint)(length - first), false) };
            rig.Post(VirtioBlkTypes.Out, sector, data);
            Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.Ok), $"write at sector {sector}");
        }

        rig.Post(VirtioBlkTypes.Flush, 0, ReadOnlySpan<GuestBuffer>.Empty);
        byte flushed = rig.Complete();
        byte[] file = rig.FileBytes();

        foreach ((ulong sector, int length) in writes)
        {
            ulong into = BlkRig.Data + 0x10_0000 + 0x123;
            rig.Ram.Span(into, length).Fill(0xEE);
            GuestBuffer[] data = length > 1000
                ? new[] { new GuestBuffer(into, 1000, true), new GuestBuffer(into + 1000, (uint)(length - 1000), true) }
                : new[] { new GuestBuffer(into, (uint)length, true) };
            rig.Post(VirtioBlkTypes.In, sector, data);
            Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.Ok), $"read at sector {sector}");
            Assert.That(rig.Ram.Span(into, length).ToArray(), Is.EqualTo(expected.AsSpan((int)sector * 512, length).ToArray()), $"read back at sector {sector}");
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(flushed, Is.EqualTo(VirtioBlkTypes.Ok));
            Assert.That(SHA256.HashData(file), Is.EqualTo(SHA256.HashData(expected)), "after the flush, the image file is what the guest wrote");
            Assert.That(rig.Device.FailedRequests + rig.Device.MalformedRequests, Is.Zero);
        }
    }

    [Test]
    public void UsedLengthsCountTheBytesWrittenIntoTheBuffer()
    {
        using var rig = new BlkRig(ImageSize);
        ushort read = rig.Read(16, BlkRig.Data, 4096);
        rig.Complete();
        ushort write = rig.Write(16, BlkRig.Data, 4096);
        rig.Complete();

        Assert.That(rig.TakeUsed(), Is.EqualTo(new[] { (read, 4097u), (write, 1u) }), "a read's data and status; a write's status");
    }

    [Test]
    public void GetIdReturnsTheSerialInTwentyBytes()
    {
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { Serial = "disk-42" });
        rig.Ram.Span(BlkRig.Data, 20).Fill(0xEE);
        rig.Post(VirtioBlkTypes.GetId, 0, new[] { new GuestBuffer(BlkRig.Data, 20, true) });
        byte status = rig.Complete();

        byte[] expected = new byte[20];
        "disk-42"u8.CopyTo(expected);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(status, Is.EqualTo(VirtioBlkTypes.Ok));
            Assert.That(rig.Ram.Span(BlkRig.Data, 20).ToArray(), Is.EqualTo(expected), "zero-padded, not terminated past 20");
            Assert.That(rig.TakeUsed()[0].Length, Is.EqualTo(21u));
        }
    }

    [Test]
    public void EachQueueOfAMultiqueueDeviceServesItsOwnRequests()
    {
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { QueueCount = 4 });
        byte[] pattern = BlkRig.Pattern(4096, 7);
        pattern.CopyTo(rig.Ram.Span(BlkRig.Data, 4096));
        for (int q = 0; q < 4; q++)
        {
            rig.Write((ulong)(q * 8), BlkRig.Data, 4096, slot: q, queue: q);
        }

        rig.Context.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            for (int q = 0; q < 4; q++)
            {
                Assert.That(rig.TakeUsed(q), Has.Count.EqualTo(1), $"queue {q}");
                Assert.That(rig.Ram.Span(BlkRig.Status(q), 1)[0], Is.EqualTo(VirtioBlkTypes.Ok));
            }

            Assert.That(rig.FileBytes().AsSpan(3 * 8 * 512, 4096).ToArray(), Is.EqualTo(pattern));
        }
    }

    [Test]
    public void RequestsCompleteOutOfOrderSafely()
    {
        using var rig = new BlkRig(ImageSize);
        for (int i = 0; i < 3; i++)
        {
            BlkRig.Pattern(4096, 100 + i).CopyTo(rig.Ram.Span(BlkRig.Data + ((ulong)i * 0x1_0000), 4096));
            rig.Context.RunUntilIdle(0);
        }

        ushort[] ids = new ushort[3];
        for (int i = 0; i < 3; i++)
        {
            ids[i] = rig.Write((ulong)(i * 100), BlkRig.Data + ((ulong)i * 0x1_0000), 4096, slot: i);
        }

        int pending = rig.Context.Pending;
        rig.Context.RunInReverse();
        var used = rig.TakeUsed();
        byte[] file = rig.FileBytes();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(pending, Is.EqualTo(3), "all three in flight at once");
            Assert.That(used, Is.EqualTo(new[] { (ids[2], 1u), (ids[1], 1u), (ids[0], 1u) }), "the used ring in completion order");
            for (int i = 0; i < 3; i++)
            {
                Assert.That(rig.Ram.Span(BlkRig.Status(i), 1)[0], Is.EqualTo(VirtioBlkTypes.Ok));
                Assert.That(file.AsSpan(i * 100 * 512, 4096).ToArray(), Is.EqualTo(BlkRig.Pattern(4096, 100 + i)));
            }
        }
    }

    [Test]
    public void AGuestThatFillsItsQueueGetsBackpressureNotUnboundedWork()
    {
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { MaxRequestsInFlight = 2, QueueSize = 16, MaxSegments = 14 });
        for (int i = 0; i < 5; i++)
        {
            rig.Read((ulong)i, BlkRig.Data + ((ulong)i * 512), 512, slot: i);
        }

        int inFlight = rig.Context.Pending;
        int completed = rig.Context.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(inFlight, Is.EqualTo(2), "two in flight; the rest wait in the ring");
            Assert.That(completed, Is.EqualTo(5), "each completion starts the next waiting request");
            Assert.That(rig.TakeUsed(), Has.Count.EqualTo(5));
            Assert.That(rig.Device.CompletedRequests, Is.EqualTo(5));
        }
    }

    [Test]
    public void AResetWhileIoIsInFlightDropsTheCompletionsAndTheDeviceWorksAfterwards()
    {
        using var rig = new BlkRig(ImageSize);
        BlkRig.Pattern(4096, 3).CopyTo(rig.Ram.Span(BlkRig.Data, 4096));
        rig.Write(0, BlkRig.Data, 4096, slot: 0);
        rig.Complete();
        rig.TakeUsed();

        // A read in flight: its I/O happens, then the driver resets before the completion runs.
        ulong into = BlkRig.Data + 0x1_0000;
        rig.Ram.Span(into, 4096).Fill(0xEE);
        rig.Read(0, into, 4096, slot: 1);
        OffLoopWorkList inFlight = new(rig.Context.ExecuteAllLeaveCompletions());
        ulong usedIndexArea = BlkRig.QueueArea(0) + 0x1000;
        byte[] usedBefore = rig.Ram.Span(usedIndexArea, 8 + (8 * 128)).ToArray();
        rig.Reset();
        inFlight.CompleteAll();

        byte[] usedAfter = rig.Ram.Span(usedIndexArea, 8 + (8 * 128)).ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(inFlight.Count, Is.EqualTo(1));
            Assert.That(rig.Device.DroppedCompletions, Is.EqualTo(1));
            Assert.That(rig.Ram.Span(into, 4096).ToArray(), Is.All.EqualTo(0xEE), "nothing copied into a buffer the driver took back");
            Assert.That(rig.Ram.Span(BlkRig.Status(1), 1)[0], Is.EqualTo(0xFF), "no status written");
            Assert.That(usedAfter, Is.EqualTo(usedBefore), "nothing written to the queue the driver reset");
        }

        // The slot came back: the driver starts again and reads what was written.
        rig.Start();
        rig.Read(0, into, 4096, slot: 2);
        Assert.That(rig.Complete(2), Is.EqualTo(VirtioBlkTypes.Ok));
        Assert.That(rig.Ram.Span(into, 4096).ToArray(), Is.EqualTo(BlkRig.Pattern(4096, 3)));
    }

    [Test]
    public void SlotsWhoseCompletionsAStopDroppedComeBackAtTheNextReset()
    {
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { MaxRequestsInFlight = 2 });
        rig.Read(0, BlkRig.Data, 512, slot: 0);
        rig.Read(1, BlkRig.Data + 512, 512, slot: 1);

        // The server stopped with both in flight: their completions never run, the items are freed (as its teardown does).
        foreach (IoreqSdk.Devices.OffLoopWork item in rig.Context.ExecuteAllLeaveCompletions())
        {
            item.Free();
        }

        rig.Reset();
        rig.Start();
        rig.Read(2, BlkRig.Data, 512, slot: 2);
        rig.Read(3, BlkRig.Data + 512, 512, slot: 3);
        int inFlight = rig.Context.Pending;
        rig.Context.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(inFlight, Is.EqualTo(2), "both slots are back");
            Assert.That(rig.Ram.Span(BlkRig.Status(2), 2).ToArray(), Is.All.EqualTo(VirtioBlkTypes.Ok));
            Assert.That(rig.Device.DroppedCompletions, Is.EqualTo(2));
        }
    }

    [Test]
    public void AQueueDisabledWhileIoIsInFlightGetsNothingWrittenBack()
    {
        using var rig = new BlkRig(ImageSize);
        ulong into = BlkRig.Data;
        rig.Ram.Span(into, 512).Fill(0xEE);
        rig.Read(0, into, 512);
        OffLoopWorkList inFlight = new(rig.Context.ExecuteAllLeaveCompletions());
        rig.Device.DisableQueue(0);
        inFlight.CompleteAll();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Device.DroppedCompletions, Is.EqualTo(1));
            Assert.That(rig.Ram.Span(into, 512).ToArray(), Is.All.EqualTo(0xEE));
            Assert.That(rig.Ram.Span(BlkRig.Status(0), 1)[0], Is.EqualTo(0xFF));
        }
    }

    [Test]
    public void WithoutFlushNegotiatedWritesStillComplete()
    {
        using var rig = new BlkRig(ImageSize, features: VirtioBlkFeatures.SegMax | VirtioBlkFeatures.BlockSize);
        BlkRig.Pattern(1024, 9).CopyTo(rig.Ram.Span(BlkRig.Data, 1024));
        rig.Write(4, BlkRig.Data, 1024);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.Ok), "written through");
            Assert.That(rig.FileBytes().AsSpan(4 * 512, 1024).ToArray(), Is.EqualTo(BlkRig.Pattern(1024, 9)));
        }
    }

    /// <summary>A list of items whose I/O ran, completed when the test says.</summary>
    private sealed class OffLoopWorkList
    {
        private readonly IoreqSdk.Devices.OffLoopWork[] _items;

        public OffLoopWorkList(IoreqSdk.Devices.OffLoopWork[] items) => _items = items;

        public int Count => _items.Length;

        public void CompleteAll()
        {
            foreach (IoreqSdk.Devices.OffLoopWork item in _items)
            {
                ManualDeviceContext.Complete(item);
            }
        }
    }
}
