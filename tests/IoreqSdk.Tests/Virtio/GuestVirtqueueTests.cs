using System;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio;

/// <summary>The simulated guest drivers refuse what a real driver cannot do (they are test tools, not hostile guests).</summary>
[TestFixture]
public sealed class GuestVirtqueueTests
{
    private const ulong In = VirtioRig.Buffers;

    [Test]
    public void A_split_driver_cannot_post_more_descriptors_than_are_free()
    {
        var rig = new VirtioRig(0, size: 4);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        var three = new[] { new GuestBuffer(In, 1, false), new GuestBuffer(In, 1, false), new GuestBuffer(In, 1, false) };
        driver.Post(three);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(driver.FreeDescriptors, Is.EqualTo(1));
            Assert.That(() => driver.Post(three), Throws.InvalidOperationException);
            Assert.That(driver.FreeDescriptors, Is.EqualTo(1));
            Assert.That(() => new GuestSplitVirtqueue(rig.Ram, 6, 0, 0, 0, false), Throws.TypeOf<ArgumentOutOfRangeException>());
        }
    }

    [Test]
    public void A_packed_driver_cannot_overwrite_slots_the_device_has_not_returned()
    {
        var rig = new VirtioRig(VirtioFeatures.RingPacked, size: 3);
        rig.Device.Echo = false;
        GuestPackedVirtqueue driver = rig.StartPacked();
        var two = new[] { new GuestBuffer(In, 1, false), new GuestBuffer(In, 1, false) };
        driver.Post(two);
        bool refused = false;
        try
        {
            driver.Post(two);
        }
        catch (InvalidOperationException)
        {
            refused = true;
        }

        var chain = new VirtioDescriptorChain();
        rig.Queue.TryPop(chain);
        rig.Queue.Push(chain, 0);
        bool taken = driver.TryTakeUsed(out _, out _);
        driver.Post(two); // wraps the ring: fits again now

        using (Assert.EnterMultipleScope())
        {
            Assert.That(refused, Is.True);
            Assert.That(taken, Is.True);
            Assert.That(driver.AvailWrap, Is.False);
            Assert.That(rig.Queue.TryPop(chain), Is.True);
        }
    }
}
