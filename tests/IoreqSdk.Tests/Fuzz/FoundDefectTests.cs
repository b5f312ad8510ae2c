using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Fuzz;

/// <summary>The defects the fuzz harnesses found, each pinned by a direct test of its own (the corpus replays the inputs).</summary>
[TestFixture]
public sealed class FoundDefectTests
{
    [Test]
    public void TheSimulatedSplitDriverFreesAUsedChainByItsOwnLinksNotByRam()
    {
        // Found by the virtqueue harness: a hostile write to a descriptor's next field after the device used the chain
        // made the simulated driver put index 0x7FFF on its free list, and its next post threw IndexOutOfRange.
        var rig = new VirtioRig(0, size: 8);
        GuestSplitVirtqueue driver = rig.StartSplit();
        ushort head = driver.Post([new GuestBuffer(VirtioRig.Buffers, 4, false), new GuestBuffer(VirtioRig.Buffers + 0x100, 4, true)]);
        rig.Kick();
        rig.Ram.SetU16(driver.DescriptorAddress(head) + 14, 0x7FFF);

        Assert.That(driver.TryTakeUsed(out ushort id, out _), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(id, Is.EqualTo(head));
            Assert.That(driver.FreeDescriptors, Is.EqualTo(8));
            Assert.That(() =>
            {
                for (int i = 0; i < 4; i++)
                {
                    driver.Post([new GuestBuffer(VirtioRig.Buffers, 4, false), new GuestBuffer(VirtioRig.Buffers + 0x100, 4, true)]);
                }
            }, Throws.Nothing, "all eight descriptors are free and in range");
        }
    }
}
