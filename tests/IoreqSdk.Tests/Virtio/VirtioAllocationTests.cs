using System;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio;

/// <summary>The pop/push/signal fast path allocates nothing once its buffers have grown (Release, tiering off).</summary>
[TestFixture]
[Category("Allocation")]
public sealed class VirtioAllocationTests
{
    private const ulong In = VirtioRig.Buffers;
    private const ulong Out = VirtioRig.Buffers + 0x1_0000;

    [TestCase(0ul, TestName = "Split, direct chains")]
    [TestCase(VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors, TestName = "Split, event index and indirect tables")]
    [TestCase(VirtioFeatures.RingPacked, TestName = "Packed, direct lists")]
    [TestCase(VirtioFeatures.RingPacked | VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors, TestName = "Packed, event index and indirect tables")]
    public void Pop_push_and_signal_allocate_nothing(ulong features)
    {
        var rig = new VirtioRig(features, size: 16);
        bool indirect = (features & VirtioFeatures.IndirectDescriptors) != 0;
        GuestVirtqueue driver = (features & VirtioFeatures.RingPacked) != 0 ? rig.StartPacked() : rig.StartSplit();
        GuestBuffer[] buffer = { new(In, 16, false), new(In + 16, 16, false), new(Out, 32, true) };

        // The device runs its usual drain loop from the transport's notify; the driver posts, kicks and reaps.
        int warm = rig.EchoRounds(driver, buffer, 32, 64, indirect);
        long before = GC.GetAllocatedBytesForCurrentThread();
        int done = rig.EchoRounds(driver, buffer, 32, 10_000, indirect);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(warm, Is.EqualTo(64));
            Assert.That(done, Is.EqualTo(10_000));
            Assert.That(allocated, Is.Zero);
            Assert.That(rig.Transport.UsedNotifications, Is.EqualTo(10_064));
        }
    }
}
