using System;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Virtio;
using IoreqSdk.Tests.Virtio.Mmio;
using NUnit.Framework;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Tests.Devices.Virtio.Rng;

/// <summary>A virtio-rng request allocates nothing: notify, pop, fill from the system generator, push, interrupt (Release, tiering off).</summary>
[TestFixture]
[Category("Allocation")]
public sealed class VirtioRngAllocationTests
{
    [Test]
    public void A_request_allocates_nothing()
    {
        var rng = new VirtioRng();
        var rig = new MmioRig(rng);
        rig.Start();
        var driver = new GuestSplitVirtqueue(rig.Ram, 16, VirtioRig.DescriptorArea, VirtioRig.DriverArea, VirtioRig.DeviceArea, eventIndex: false);
        GuestBuffer[] buffer = { new(VirtioRig.Buffers, 64, true) };
        int Rounds(int count)
        {
            int done = 0;
            for (int i = 0; i < count; i++)
            {
                driver.Post(buffer);
                if (driver.KickPrepare())
                {
                    rig.Write(R.QueueNotify, 0);
                }

                rig.Context.RunPosted();
                rig.Write(R.InterruptAck, rig.Read(R.InterruptStatus));
                done += driver.TryTakeUsed(out _, out uint length) && length == 64 ? 1 : 0;
            }

            return done;
        }

        int warm = Rounds(64);
        long[] allocated = new long[3];
        int done = 0;
        for (int pass = 0; pass < allocated.Length; pass++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            done += Rounds(5_000);
            allocated[pass] = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(warm, Is.EqualTo(64));
            Assert.That(done, Is.EqualTo(15_000));
            Assert.That(allocated, Has.Some.Zero, $"bytes per pass: {string.Join(", ", allocated)}");
            Assert.That(allocated, Has.All.LessThan(5_000 * 24));
            Assert.That(rng.BytesDelivered, Is.EqualTo(15_064 * 64L));
        }
    }
}
