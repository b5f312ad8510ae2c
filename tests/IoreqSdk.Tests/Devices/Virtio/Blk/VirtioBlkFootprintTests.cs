using System;
using System.IO;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Storage;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Blk;

/// <summary>
/// What a virtio-blk device costs before a request needs a bounce buffer: a daemon serving many disks pays it per
/// disk (benchmarks/README.md, Footprint).
/// </summary>
[TestFixture]
public sealed class VirtioBlkFootprintTests
{
    [Test]
    public void ADeviceMakesNoBounceBufferUntilARequestNeedsOne()
    {
        string path = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"blk-{Guid.NewGuid():N}.img");
        File.WriteAllBytes(path, new byte[1 << 20]);
        try
        {
            using RawImageFile image = RawImageFile.Open(path, readOnly: true);
            var options = new VirtioBlkOptions { QueueCount = 2, MaxRequestsInFlight = 8, BounceBufferSize = 64 * 1024 };

            // The first device pays the types' one-time costs (static buffers, type loading); the second shows a device's own.
            using var first = new VirtioBlkDevice(image, options);
            long before = GC.GetAllocatedBytesForCurrentThread();
            using var device = new VirtioBlkDevice(image, options);
            long cost = GC.GetAllocatedBytesForCurrentThread() - before;

            // 16 request slots; made up front their buffers were 1 MiB.
            Assert.That(cost, Is.LessThan(options.BounceBufferSize), $"a device with {options.QueueCount * options.MaxRequestsInFlight} request slots allocated {cost} bytes");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
