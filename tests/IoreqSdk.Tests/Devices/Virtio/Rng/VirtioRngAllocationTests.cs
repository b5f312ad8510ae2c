using System;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Infrastructure;
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

        SteadyStateAllocations.AssertNone(Rounds, 5_000, "request");
        Assert.That(rng.BytesDelivered, Is.EqualTo(SteadyStateAllocations.TotalRounds(5_000) * 64L));
    }
}
