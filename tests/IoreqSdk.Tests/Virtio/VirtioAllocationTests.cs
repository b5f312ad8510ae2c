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

        // The steady state allocates nothing: of three passes of 10,000 rounds at least one allocates 0 bytes. A
        // per-round allocation (24 bytes at the least) would show in every pass as 240,000 bytes or more; a one-off
        // of the runtime's (a type loaded the first time a path runs, seen once in a full suite run: 3,176 bytes in
        // one pass) shows in one.
        long[] allocated = new long[3];
        int done = 0;
        for (int pass = 0; pass < allocated.Length; pass++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            done += rig.EchoRounds(driver, buffer, 32, 10_000, indirect);
            allocated[pass] = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(warm, Is.EqualTo(64));
            Assert.That(done, Is.EqualTo(30_000));
            Assert.That(allocated, Has.Some.Zero, $"bytes per pass: {string.Join(", ", allocated)}");
            Assert.That(allocated, Has.All.LessThan(10_000 * 24), "no pass allocates per round");
            Assert.That(rig.Transport.UsedNotifications, Is.EqualTo(30_064));
        }
    }
}
