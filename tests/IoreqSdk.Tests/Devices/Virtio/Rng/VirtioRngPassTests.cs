using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Virtio;
using IoreqSdk.Tests.Virtio.Mmio;
using IoreqSdk.Virtio;
using NUnit.Framework;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Tests.Devices.Virtio.Rng;

/// <summary>virtio-rng's passes on the transport alone, one thread: budgets, refused continuations, buffers outside RAM.</summary>
[TestFixture]
public sealed class VirtioRngPassTests
{
    [Test]
    public void A_pass_stops_at_its_budget_and_the_next_pass_takes_the_rest()
    {
        var rng = new VirtioRng(maxBytesPerBuffer: 16, maxBytesPerPass: 32);
        var rig = new MmioRig(rng);
        rig.Start();
        var driver = Driver(rig);
        for (int i = 0; i < 5; i++)
        {
            driver.Post(new GuestBuffer[] { new(VirtioRig.Buffers + ((ulong)i * 16), 16, true) });
        }

        rig.Write(R.QueueNotify, 0);
        rig.Context.RunPosted();
        long afterFirst = rng.BuffersReturned;
        int waiting = rig.Context.Waiting;
        rig.Context.RunPosted();
        rig.Context.RunPosted();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(afterFirst, Is.EqualTo(2), "32 bytes: two buffers of 16");
            Assert.That(waiting, Is.EqualTo(1), "the rest is posted for a later pass");
            Assert.That(rng.BuffersReturned, Is.EqualTo(5));
            Assert.That(rng.ContinuedPasses, Is.EqualTo(2));
            Assert.That(rig.Context.Waiting, Is.Zero, "the last pass found the queue empty and posted nothing");
        }
    }

    [Test]
    public void A_refused_continuation_leaves_the_rest_for_the_drivers_next_notify()
    {
        var rng = new VirtioRng(maxBytesPerBuffer: 16, maxBytesPerPass: 16);
        var rig = new MmioRig(rng);
        rig.Start();
        var driver = Driver(rig);
        driver.Post(new GuestBuffer[] { new(VirtioRig.Buffers, 16, true) });
        driver.Post(new GuestBuffer[] { new(VirtioRig.Buffers + 16, 16, true) });
        rig.Write(R.QueueNotify, 0);
        rig.Context.Capacity = 0;
        rig.Context.RunPosted();
        long afterFirst = rng.BuffersReturned;
        bool kick = driver.KickPrepare();
        rig.Context.Capacity = 64;
        rig.Write(R.QueueNotify, 0);
        rig.Context.RunPosted();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(afterFirst, Is.EqualTo(1));
            Assert.That(rng.RefusedContinuations, Is.EqualTo(1));
            Assert.That(kick, Is.True, "notifications were enabled again, so the driver's next kick is wanted");
            Assert.That(rng.BuffersReturned, Is.EqualTo(2));
        }
    }

    [Test]
    public void A_buffer_outside_guest_RAM_comes_back_empty_and_the_device_needs_a_reset()
    {
        var rng = new VirtioRng();
        var rig = new MmioRig(rng);
        rig.Start();
        var driver = Driver(rig);
        driver.Post(new GuestBuffer[] { new(rig.Ram.End - 8, 64, true) });
        rig.Write(R.QueueNotify, 0);
        rig.Context.RunPosted();
        bool used = driver.TryTakeUsed(out _, out uint length);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(used, Is.True);
            Assert.That(length, Is.Zero);
            Assert.That(rng.Status & VirtioDeviceStatus.DeviceNeedsReset, Is.EqualTo(VirtioDeviceStatus.DeviceNeedsReset));
            Assert.That(rig.Read(R.InterruptStatus) & R.InterruptConfigChange, Is.EqualTo(R.InterruptConfigChange), "the driver is told by a config-change interrupt");
            Assert.That(rig.Line.IsAsserted, Is.True);
        }
    }

    private static GuestSplitVirtqueue Driver(MmioRig rig) =>
        new(rig.Ram, 16, VirtioRig.DescriptorArea, VirtioRig.DriverArea, VirtioRig.DeviceArea, eventIndex: false);
}
