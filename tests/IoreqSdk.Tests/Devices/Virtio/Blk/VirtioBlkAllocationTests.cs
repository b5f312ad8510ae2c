using System;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Blk;

/// <summary>virtio-blk's steady request path — pop, validate, offload, file I/O, copy or pin, answer — allocates nothing.</summary>
[TestFixture]
[Category("Allocation")]
public sealed class VirtioBlkAllocationTests
{
    [Test]
    public void WritesReadsAndFlushesAllocateNothingPerRequest([Values] bool zeroCopy)
    {
        using var rig = new BlkRig(4 << 20, pinnable: zeroCopy);
        GuestVirtqueue driver = rig.Driver(0);
        GuestBuffer[] write = { new(BlkRig.Header(0), 16, false), new(BlkRig.Data, 2048, false), new(BlkRig.Data + 2048, 2048, false), new(BlkRig.Status(0), 1, true) };
        GuestBuffer[] read = { new(BlkRig.Header(1), 16, false), new(BlkRig.Data + 0x1_0000, 4096, true), new(BlkRig.Status(1), 1, true) };
        GuestBuffer[] flush = { new(BlkRig.Header(2), 16, false), new(BlkRig.Status(2), 1, true) };
        rig.Ram.SetU32(BlkRig.Header(0), VirtioBlkTypes.Out);
        rig.Ram.SetU32(BlkRig.Header(1), VirtioBlkTypes.In);
        rig.Ram.SetU32(BlkRig.Header(2), VirtioBlkTypes.Flush);

        int Rounds(int count)
        {
            int ok = 0;
            for (int i = 0; i < count; i++)
            {
                ulong sector = (ulong)(i % 64) * 8;
                rig.Ram.SetU64(BlkRig.Header(0) + 8, sector);
                rig.Ram.SetU64(BlkRig.Header(1) + 8, sector);
                rig.PostRaw(write);
                rig.PostRaw(read);
                if (i % 16 == 0)
                {
                    rig.PostRaw(flush);
                }

                rig.Context.RunUntilIdle();
                while (driver.TryTakeUsed(out _, out _))
                {
                }

                if (rig.Ram.Span(BlkRig.Status(0), 1)[0] == VirtioBlkTypes.Ok && rig.Ram.Span(BlkRig.Status(1), 1)[0] == VirtioBlkTypes.Ok)
                {
                    ok++;
                }
            }

            return ok;
        }

        SteadyStateAllocations.AssertNone(Rounds, 1_000, "request");
        Assert.That(rig.Device.ZeroCopyRequests, zeroCopy ? Is.GreaterThan(0) : Is.Zero, "the path the case is about was taken");
    }
}
