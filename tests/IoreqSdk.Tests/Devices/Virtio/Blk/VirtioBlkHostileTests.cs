using System;
using System.IO;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Storage;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Blk;

/// <summary>
/// A hostile or careless driver against virtio-blk: every malformed request is answered (IOERR, UNSUPP) or returned
/// empty, never a crash or an access outside the image or guest RAM; read-only disks stay unchanged; DISCARD and
/// WRITE_ZEROES reach the file within their limits.
/// </summary>
[TestFixture]
public sealed class VirtioBlkHostileTests
{
    private const long ImageSize = 1 << 20;
    private const ulong Capacity = ImageSize / 512;

    [TestCase(Capacity, 512u, TestName = "A read at the capacity")]
    [TestCase(Capacity - 1, 1024u, TestName = "A read running past the capacity")]
    [TestCase(ulong.MaxValue / 512 + 1, 512u, TestName = "A sector whose byte offset overflows 64 bits")]
    [TestCase(ulong.MaxValue, 512u, TestName = "The largest sector")]
    [TestCase(0ul, 700u, TestName = "A read of a partial sector")]
    public void AnInvalidReadIsAnIoErrorAndTouchesNothing(ulong sector, uint length)
    {
        using var rig = new BlkRig(ImageSize);
        rig.Ram.Span(BlkRig.Data, (int)length).Fill(0xEE);
        rig.Read(sector, BlkRig.Data, length);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.IoError));
            Assert.That(rig.Ram.Span(BlkRig.Data, (int)length).ToArray(), Is.All.EqualTo(0xEE));
            Assert.That(rig.Context.Pending, Is.Zero, "no I/O was started");
            Assert.That(rig.Device.FailedRequests, Is.EqualTo(1));
        }
    }

    [Test]
    public void TheLastSectorsAreReadable()
    {
        using var rig = new BlkRig(ImageSize);
        rig.Read(Capacity - 2, BlkRig.Data, 1024);
        Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.Ok));
    }

    [TestCase(Capacity, 512u, TestName = "A write at the capacity")]
    [TestCase(0ul, 513u, TestName = "A write of a partial sector")]
    [TestCase(ulong.MaxValue / 512 + 1, 512u, TestName = "A write whose byte offset overflows")]
    public void AnInvalidWriteIsAnIoErrorAndTheFileIsUnchanged(ulong sector, uint length)
    {
        using var rig = new BlkRig(ImageSize);
        rig.Ram.Span(BlkRig.Data, (int)length).Fill(0xAB);
        rig.Write(sector, BlkRig.Data, length);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.IoError));
            Assert.That(rig.FileBytes(), Has.Length.EqualTo(ImageSize).And.All.Zero, "the image neither changed nor grew");
        }
    }

    [Test]
    public void AChainWithoutADeviceWritableStatusByteComesBackEmpty()
    {
        using var rig = new BlkRig(ImageSize);
        rig.Ram.SetU32(BlkRig.Header(0), VirtioBlkTypes.In);
        rig.Ram.SetU64(BlkRig.Header(0) + 8, 0);

        // Header and "status" both device-readable: there is nothing the device may write.
        ushort id = rig.PostRaw(new[] { new GuestBuffer(BlkRig.Header(0), 16, false), new GuestBuffer(BlkRig.Status(0), 1, false) });
        rig.Ram.Span(BlkRig.Status(0), 1)[0] = 0x5A;
        rig.Complete();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.TakeUsed(), Is.EqualTo(new[] { (id, 0u) }));
            Assert.That(rig.Ram.Span(BlkRig.Status(0), 1)[0], Is.EqualTo(0x5A), "a device-readable byte is never written");
            Assert.That(rig.Device.MalformedRequests, Is.EqualTo(1));
        }
    }

    [Test]
    public void AStatusByteOutsideGuestRamComesBackEmpty()
    {
        using var rig = new BlkRig(ImageSize);
        rig.Ram.SetU32(BlkRig.Header(0), VirtioBlkTypes.Flush);
        ulong outside = BlkRig.RamBase + BlkRig.RamSize + 0x1000;
        ushort id = rig.PostRaw(new[] { new GuestBuffer(BlkRig.Header(0), 16, false), new GuestBuffer(outside, 1, true) });
        rig.Complete();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.TakeUsed(), Is.EqualTo(new[] { (id, 0u) }));
            Assert.That(rig.Device.MalformedRequests, Is.EqualTo(1));
        }
    }

    [Test]
    public void AShortHeaderIsAnIoError()
    {
        using var rig = new BlkRig(ImageSize);
        rig.Ram.Span(BlkRig.Status(0), 1)[0] = 0xFF;
        rig.PostRaw(new[] { new GuestBuffer(BlkRig.Header(0), 8, false), new GuestBuffer(BlkRig.Status(0), 1, true) });
        Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.IoError));
    }

    [Test]
    public void MoreDataSegmentsThanSegMaxIsAnIoError()
    {
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { MaxSegments = 4 });
        GuestBuffer[] Segments(int count)
        {
            var segments = new GuestBuffer[count];
            for (int i = 0; i < count; i++)
            {
                segments[i] = new GuestBuffer(BlkRig.Data + ((ulong)i * 512), 512, true);
            }

            return segments;
        }

        rig.Post(VirtioBlkTypes.In, 0, Segments(5));
        byte tooMany = rig.Complete();
        rig.Post(VirtioBlkTypes.In, 0, Segments(4));
        byte atTheLimit = rig.Complete();

        Assert.That((tooMany, atTheLimit), Is.EqualTo((VirtioBlkTypes.IoError, VirtioBlkTypes.Ok)));
    }

    [TestCase(2u, TestName = "The legacy SCSI command")]
    [TestCase(10u, TestName = "GET_LIFETIME (not offered)")]
    [TestCase(14u, TestName = "SECURE_ERASE (not offered)")]
    [TestCase(0xDEAD_BEEFu, TestName = "A made-up type")]
    public void AnUnknownRequestTypeIsUnsupported(uint type)
    {
        using var rig = new BlkRig(ImageSize);
        rig.Post(type, 0, new[] { new GuestBuffer(BlkRig.Data, 512, true) });
        Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.Unsupported));
        Assert.That(rig.Device.UnsupportedRequests, Is.EqualTo(1));
    }

    [Test]
    public void DataOutsideGuestRamIsAnIoErrorAndNothingOutsideIsTouched()
    {
        using var rig = new BlkRig(ImageSize);
        ulong outside = BlkRig.RamBase + BlkRig.RamSize - 256;
        rig.Read(0, outside, 512);
        byte read = rig.Complete();
        rig.Write(0, outside, 512, slot: 1);
        byte write = rig.Complete(1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That((read, write), Is.EqualTo((VirtioBlkTypes.IoError, VirtioBlkTypes.IoError)));
            Assert.That(rig.Ram.RefusedAccesses, Is.GreaterThanOrEqualTo(2), "the accesses were refused, not made");
            Assert.That(rig.FileBytes(), Is.All.Zero);
        }
    }

    [Test]
    public void ARefusedOffloadIsAnIoErrorNotAHang()
    {
        using var rig = new BlkRig(ImageSize);
        rig.Context.Accepting = false;
        rig.Read(0, BlkRig.Data, 512);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.IoError));
            Assert.That(rig.Device.RefusedRequests, Is.EqualTo(1));
            Assert.That(rig.TakeUsed(), Has.Count.EqualTo(1), "answered at once");
        }
    }

    [Test]
    public void AReadOnlyDiskRefusesEveryChangeAndStillReads([Values] bool fileOpenedReadOnly)
    {
        using var rig = new BlkRig(ImageSize, fileOpenedReadOnly ? null : new VirtioBlkOptions { ReadOnly = true }, readOnlyFile: fileOpenedReadOnly);
        rig.Ram.Span(BlkRig.Data, 512).Fill(0xAB);
        rig.Write(0, BlkRig.Data, 512);
        byte write = rig.Complete();
        rig.Ranges(VirtioBlkTypes.WriteZeroes, new[] { (0ul, 8u, 0u) }, BlkRig.Data + 0x1000);
        byte zeroes = rig.Complete();
        rig.Ranges(VirtioBlkTypes.Discard, new[] { (0ul, 8u, 0u) }, BlkRig.Data + 0x1000);
        byte discard = rig.Complete();
        rig.Read(0, BlkRig.Data, 512);
        byte read = rig.Complete();
        rig.Post(VirtioBlkTypes.Flush, 0, ReadOnlySpan<GuestBuffer>.Empty);
        byte flush = rig.Complete();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Device.OfferedFeatures & VirtioBlkFeatures.ReadOnly, Is.Not.Zero, "VIRTIO_BLK_F_RO offered");
            Assert.That((write, zeroes, discard), Is.EqualTo((VirtioBlkTypes.IoError, VirtioBlkTypes.IoError, VirtioBlkTypes.IoError)));
            Assert.That((read, flush), Is.EqualTo((VirtioBlkTypes.Ok, VirtioBlkTypes.Ok)));
            Assert.That(rig.Ram.Span(BlkRig.Data, 512).ToArray(), Is.All.Zero, "the read returned the image, not the write");
            Assert.That(rig.FileBytes(), Is.All.Zero);
        }
    }

    [Test]
    public void WriteZeroesAndDiscardReachTheFileWithinTheirRanges()
    {
        using var rig = new BlkRig(ImageSize);
        byte[] pattern = BlkRig.Pattern(64 * 1024, 5);
        pattern.CopyTo(rig.Ram.Span(BlkRig.Data, pattern.Length));
        rig.Write(0, BlkRig.Data, (uint)pattern.Length);
        Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.Ok));

        rig.Ranges(VirtioBlkTypes.WriteZeroes, new[] { (8ul, 8u, 0u), (40ul, 1u, 0u) }, BlkRig.Data + 0x2_0000);
        byte zeroes = rig.Complete();
        rig.Ranges(VirtioBlkTypes.WriteZeroes, new[] { (24ul, 8u, 1u) }, BlkRig.Data + 0x2_0000);
        byte zeroesUnmap = rig.Complete();
        rig.Ranges(VirtioBlkTypes.Discard, new[] { (64ul, 16u, 0u) }, BlkRig.Data + 0x2_0000);
        byte discard = rig.Complete();
        byte[] file = rig.FileBytes();

        byte[] expected = (byte[])pattern.Clone();
        Array.Clear(expected, 8 * 512, 8 * 512);
        Array.Clear(expected, 40 * 512, 512);
        Array.Clear(expected, 24 * 512, 8 * 512);
        bool holes = FileSystemPunchesHoles();
        if (holes)
        {
            Array.Clear(expected, 64 * 512, 16 * 512);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That((zeroes, zeroesUnmap, discard), Is.EqualTo((VirtioBlkTypes.Ok, VirtioBlkTypes.Ok, VirtioBlkTypes.Ok)));
            Assert.That(file.AsSpan(0, pattern.Length).ToArray(), Is.EqualTo(expected), holes ? "zeroed, unmapped and discarded ranges read zero" : "zeroed ranges read zero; this file system keeps discarded data");
            Assert.That(file.AsSpan(pattern.Length).ToArray(), Is.All.Zero);
            Assert.That(file, Has.Length.EqualTo(ImageSize), "the image keeps its size");
        }
    }

    [TestCase(VirtioBlkTypes.Discard, 0ul, 8u, 1u, VirtioBlkTypes.Unsupported, TestName = "A discard with the unmap flag")]
    [TestCase(VirtioBlkTypes.WriteZeroes, 0ul, 8u, 2u, VirtioBlkTypes.Unsupported, TestName = "A write-zeroes with a reserved flag")]
    [TestCase(VirtioBlkTypes.WriteZeroes, Capacity - 4, 8u, 0u, VirtioBlkTypes.IoError, TestName = "A range past the capacity")]
    [TestCase(VirtioBlkTypes.Discard, ulong.MaxValue - 2, 8u, 0u, VirtioBlkTypes.IoError, TestName = "A range whose end overflows")]
    [TestCase(VirtioBlkTypes.WriteZeroes, 0ul, 1025u, 0u, VirtioBlkTypes.IoError, TestName = "A range longer than max_write_zeroes_sectors")]
    public void AnInvalidRangeIsRefusedAndTheFileIsUnchanged(uint type, ulong sector, uint count, uint flags, byte status)
    {
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { MaxRangeSectors = 1024 });
        rig.Ram.Span(BlkRig.Data, 8192).Fill(0xAB);
        rig.Write(0, BlkRig.Data, 8192);
        rig.Complete();
        rig.Ranges(type, new[] { (sector, count, flags) }, BlkRig.Data + 0x1_0000);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Complete(), Is.EqualTo(status));
            Assert.That(rig.FileBytes().AsSpan(0, 8192).ToArray(), Is.All.EqualTo(0xAB));
        }
    }

    [Test]
    public void MoreRangesThanMaxSegIsAnIoError()
    {
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { MaxRanges = 2 });
        rig.Ranges(VirtioBlkTypes.WriteZeroes, new[] { (0ul, 1u, 0u), (2ul, 1u, 0u), (4ul, 1u, 0u) }, BlkRig.Data);
        Assert.That(rig.Complete(), Is.EqualTo(VirtioBlkTypes.IoError));
    }

    [Test]
    public void DiscardAndWriteZeroesNotNegotiatedAreUnsupported()
    {
        using var rig = new BlkRig(ImageSize, features: VirtioBlkFeatures.Flush);
        rig.Ranges(VirtioBlkTypes.Discard, new[] { (0ul, 8u, 0u) }, BlkRig.Data);
        byte discard = rig.Complete();
        rig.Ranges(VirtioBlkTypes.WriteZeroes, new[] { (0ul, 8u, 0u) }, BlkRig.Data);
        byte zeroes = rig.Complete();
        Assert.That((discard, zeroes), Is.EqualTo((VirtioBlkTypes.Unsupported, VirtioBlkTypes.Unsupported)));
    }

    private static bool FileSystemPunchesHoles()
    {
        string path = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"holes-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(path, new byte[8192]);
        try
        {
            using RawImageFile file = RawImageFile.Open(path, readOnly: false);
            return file.TryPunchHole(0, 4096);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
