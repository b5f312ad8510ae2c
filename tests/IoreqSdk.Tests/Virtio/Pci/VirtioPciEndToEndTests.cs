using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Simulation.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>A virtio device driven end to end over virtio-pci: x86 with MSI-X, Arm64 with INTx behind the ECAM bridge.</summary>
[TestFixture]
public sealed class VirtioPciEndToEndTests
{
    [Test]
    public void Echo_runs_over_MSI_X_on_x86()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        GuestSplitVirtqueue queue = rig.Start();
        int echoed = 0;
        var causes = GuestVirtioInterrupts.None;
        for (uint i = 0; i < 20; i++)
        {
            if (!rig.EchoOnce(queue, 0xE000 + i, out GuestVirtioInterrupts seen))
            {
                break;
            }

            causes |= seen;
            echoed++;
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Driver.UsesMsix, Is.True);
            Assert.That(rig.Transport.InterruptMode, Is.EqualTo(PciInterruptMode.Msix));
            Assert.That(echoed, Is.EqualTo(20));
            Assert.That(causes, Is.EqualTo(GuestVirtioInterrupts.UsedBuffers));
            Assert.That(rig.Guest.Intx!.Assertions, Is.Zero, "MSI-X, not INTx");
        }
    }

    [Test]
    public void Echo_runs_over_INTx_and_the_ISR_on_Arm64_behind_the_ECAM_bridge()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.Arm64);
        GuestSplitVirtqueue queue = rig.Start();
        int echoed = 0;
        var causes = GuestVirtioInterrupts.None;
        for (uint i = 0; i < 20; i++)
        {
            if (!rig.EchoOnce(queue, 0xA000 + i, out GuestVirtioInterrupts seen))
            {
                break;
            }

            causes |= seen;
            echoed++;
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Driver.UsesMsix, Is.False, "the platform hides MSI-X");
            Assert.That(rig.Guest.FindCapability(PciConfigRegisters.CapabilityMsix), Is.Zero);
            Assert.That(echoed, Is.EqualTo(20));
            Assert.That(causes, Is.EqualTo(GuestVirtioInterrupts.UsedBuffers));
            Assert.That(rig.Guest.Intx!.Assertions, Is.EqualTo(20), "one assertion per used buffer, each acknowledged by the ISR read");
            Assert.That(rig.Guest.Intx.IsAsserted, Is.False);
            Assert.That(rig.Guest.Messages, Is.Empty);
        }
    }

    [Test]
    public void With_bus_mastering_off_the_device_reaches_no_guest_memory()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        GuestSplitVirtqueue queue = rig.Start();
        Assert.That(rig.EchoOnce(queue, 1, out _), Is.True, "the rings are in use");
        uint command = rig.Guest.ReadConfig(PciConfigRegisters.Command, 2);
        rig.Guest.WriteConfig(PciConfigRegisters.Command, 2, command & ~(uint)PciConfigRegisters.CommandBusMaster);
        rig.Ram.SetU32(rig.Buffers, 2);
        rig.Ram.SetU32(rig.Buffers + 0x100, 0);
        queue.Post([new GuestBuffer(rig.Buffers, 4, false), new GuestBuffer(rig.Buffers + 0x100, 4, true)]);
        rig.Driver.Notify(0);
        rig.Driver.ReadStatus(); // served after the flush the doorbell posted

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Transport.RefusedDma, Is.GreaterThan(0));
            Assert.That(queue.UsedIndex, Is.EqualTo((ushort)1), "nothing more was used");
            Assert.That(rig.Ram.U32(rig.Buffers + 0x100), Is.Zero, "nothing was written");
        }
    }
}
