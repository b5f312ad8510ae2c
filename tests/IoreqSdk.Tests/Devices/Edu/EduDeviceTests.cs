using System;
using System.Linq;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;
using IoreqSdk.Pci;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Edu;

/// <summary>The edu device, driven through its registers as QEMU's docs/specs/edu.rst describes them, on both platforms.</summary>
[TestFixture]
public sealed class EduDeviceTests
{
    [Test]
    public void IdentifiesItselfAndPassesTheLivenessCheck([Values] GuestArchitecture architecture)
    {
        using var guest = new DeviceOnGuest(architecture, new EduDevice());
        guest.Write(0x04, 4, 0xCAFE_F00D);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Guest.Function(DeviceOnGuest.Slot).VendorId, Is.EqualTo(0x1234));
            Assert.That(guest.Guest.Function(DeviceOnGuest.Slot).DeviceId, Is.EqualTo(0x11e8));
            Assert.That(guest.Guest.Config(DeviceOnGuest.Slot, PciConfigRegisters.RevisionId, 1), Is.EqualTo(0x10));
            Assert.That(guest.Bar0.Size, Is.EqualTo(1UL << 20));
            Assert.That(guest.Bar0.Kind, Is.EqualTo(PciBarKind.Memory32));
            Assert.That(guest.Read(0x00, 4), Is.EqualTo(0x010000edUL));
            Assert.That(guest.Read(0x04, 4), Is.EqualTo((ulong)~0xCAFE_F00Du));
        }
    }

    [Test]
    public void OnlyFourByteAccessesExistBelow0x80([Values] GuestArchitecture architecture)
    {
        using var guest = new DeviceOnGuest(architecture, new EduDevice());
        guest.Write(0x04, 4, 0);
        guest.Write(0x04, 2, 0x1234);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Read(0x00, 2), Is.EqualTo(0xFFFFUL), "a 2-byte read of the identification register");
            Assert.That(guest.Read(0x00, 1), Is.EqualTo(0xFFUL));
            Assert.That(guest.Read(0x04, 4), Is.EqualTo(0xFFFF_FFFFUL), "the 2-byte write was ignored: ~0 still reads");
            Assert.That(guest.Read(0x40, 4), Is.EqualTo(0xFFFF_FFFFUL), "an undefined register");
        }
    }

    [Test]
    public void ComputesFactorialsAndClearsTheBusyBitWhenDone([Values] GuestArchitecture architecture)
    {
        using var guest = new DeviceOnGuest(architecture, new EduDevice());
        guest.Write(0x08, 4, 12);

        Assert.That(Wait.Until(() => (guest.Read(0x20, 4) & 1) == 0), Is.True, "status bit 0 clears");
        Assert.That(guest.Read(0x08, 4), Is.EqualTo(479_001_600UL));

        guest.Write(0x08, 4, 13);
        Assert.That(Wait.Until(() => (guest.Read(0x20, 4) & 1) == 0), Is.True);
        Assert.That(guest.Read(0x08, 4), Is.EqualTo((ulong)unchecked(13u * 479_001_600u)), "32-bit arithmetic wraps as on the device");
        Assert.That(guest.IntxObservations, Is.Zero, "no interrupt unless status bit 7 asks for one");
    }

    [Test]
    public void FactorialCompletionRaisesIntxUntilAcknowledged([Values] GuestArchitecture architecture)
    {
        var edu = new EduDevice();
        using var guest = new DeviceOnGuest(architecture, edu);
        guest.Write(0x20, 4, 0x80);
        Assert.That(guest.Read(0x20, 4), Is.EqualTo(0x80UL), "the interrupt-enable bit reads back");
        guest.Write(0x08, 4, 5);

        Assert.That(Wait.Until(() => guest.IntxObservations == 1), Is.True, "INTA asserted (x86 level, Arm64 SPI)");
        Assert.That(guest.Read(0x24, 4), Is.EqualTo(EduDevice.FactorialInterrupt));
        Assert.That(guest.Read(0x08, 4), Is.EqualTo(120UL));
        Assert.That(guest.Guest.Config(DeviceOnGuest.Slot, PciConfigRegisters.Status, 2) & PciConfigRegisters.StatusInterrupt, Is.Not.Zero);

        guest.Write(0x64, 4, EduDevice.FactorialInterrupt);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Read(0x24, 4), Is.Zero);
            Assert.That(guest.Guest.Config(DeviceOnGuest.Slot, PciConfigRegisters.Status, 2) & PciConfigRegisters.StatusInterrupt, Is.Zero, "line lowered");
            if (architecture == GuestArchitecture.X86)
            {
                Assert.That(guest.Xen.Interrupts.PciIntx(DeviceOnGuest.Slot, 0), Is.False);
            }
            else
            {
                Assert.That(guest.Xen.Interrupts.SpiInjections(guest.Spi), Is.EqualTo(1), "one injection per assertion");
            }
        }
    }

    [Test]
    public void RaiseAndAcknowledgeKeepTheLineUpWhileAnyBitIsSet([Values] GuestArchitecture architecture)
    {
        using var guest = new DeviceOnGuest(architecture, new EduDevice());
        guest.Write(0x60, 4, 0x0000_0005);
        guest.Write(0x60, 4, 0x8000_0000);
        Assert.That(guest.Read(0x24, 4), Is.EqualTo(0x8000_0005UL));

        guest.Write(0x64, 4, 0x8000_0001);
        Assert.That(guest.Read(0x24, 4), Is.EqualTo(4UL));
        Assert.That(guest.Guest.Config(DeviceOnGuest.Slot, PciConfigRegisters.Status, 2) & PciConfigRegisters.StatusInterrupt, Is.Not.Zero, "bit 2 still pending");

        guest.Write(0x64, 4, 4);
        Assert.That(guest.Guest.Config(DeviceOnGuest.Slot, PciConfigRegisters.Status, 2) & PciConfigRegisters.StatusInterrupt, Is.Zero);
    }

    [Test]
    public void SignalsThroughMsiWhereThePlatformInjectsMsis([Values] GuestArchitecture architecture)
    {
        using var guest = new DeviceOnGuest(architecture, new EduDevice());
        int msi = guest.Guest.FindCapability(DeviceOnGuest.Slot, 0x05);
        if (architecture == GuestArchitecture.Arm64)
        {
            Assert.That(msi, Is.Zero, "Xen 4.17 on Arm cannot inject MSIs, so the capability is hidden and INTx serves");
            return;
        }

        Assert.That(msi, Is.Not.Zero);
        guest.Guest.Config(DeviceOnGuest.Slot, msi + 4, 4, 0xFEE0_1000);
        guest.Guest.Config(DeviceOnGuest.Slot, msi + 8, 4, 0);
        guest.Guest.Config(DeviceOnGuest.Slot, msi + 12, 2, 0x4052);
        guest.Guest.Config(DeviceOnGuest.Slot, msi + 2, 2, guest.Guest.Config(DeviceOnGuest.Slot, msi + 2, 2) | 1);
        guest.Write(0x60, 4, 1);

        Assert.That(Wait.Until(() => guest.Xen.Interrupts.Msis.Count == 1), Is.True);
        Assert.That(guest.Xen.Interrupts.Msis.Single(), Is.EqualTo((0xFEE0_1000UL, 0x4052u)));
        Assert.That(guest.Xen.Interrupts.PciIntx(DeviceOnGuest.Slot, 0), Is.False, "MSI replaces INTx");
    }

    [Test]
    public void DmaCopiesGuestMemoryThroughItsBufferBothWays([Values] GuestArchitecture architecture)
    {
        var edu = new EduDevice(DmaBitsFor(architecture));
        using var guest = new DeviceOnGuest(architecture, edu);
        ulong ram = guest.Xen.RamBase;
        for (int i = 0; i < 100; i++)
        {
            guest.Xen.Ram[0x1000 + i] = (byte)(255 - i);
        }

        Transfer(guest, ram + 0x1000, EduDevice.DmaBufferStart + 0x10, 100, toRam: false);
        Transfer(guest, EduDevice.DmaBufferStart + 0x10, ram + 0x3000, 100, toRam: true, interrupt: true);

        Assert.That(guest.Xen.Ram.Slice(0x3000, 100).ToArray(), Is.EqualTo(guest.Xen.Ram.Slice(0x1000, 100).ToArray()));
        Assert.That(edu.DmaBytes, Is.EqualTo(200));
        Assert.That(guest.Read(0x24, 4), Is.EqualTo(EduDevice.DmaInterrupt), "command bit 2 asked for the completion interrupt");
        Assert.That(Wait.Until(() => guest.IntxObservations == 1), Is.True);
    }

    [Test]
    public void DmaOutsideTheBufferOrGuestRamOrWithoutBusMasteringIsRefused([Values] GuestArchitecture architecture)
    {
        var edu = new EduDevice(DmaBitsFor(architecture));
        using var guest = new DeviceOnGuest(architecture, edu);
        ulong ram = guest.Xen.RamBase;
        guest.Xen.Ram[0x3000] = 0x5A;

        Transfer(guest, EduDevice.DmaBufferStart + 0xFFF, ram + 0x3000, 2, toRam: true);
        Transfer(guest, EduDevice.DmaBufferStart - 1, ram + 0x3000, 1, toRam: true);
        Transfer(guest, EduDevice.DmaBufferStart, ram + 0x0F00_0000, 16, toRam: true);
        Assert.That(edu.DmaErrors, Is.EqualTo(3), "past the buffer's end, before its start, outside guest RAM");

        uint command = guest.Guest.Config(DeviceOnGuest.Slot, PciConfigRegisters.Command, 2);
        guest.Guest.Config(DeviceOnGuest.Slot, PciConfigRegisters.Command, 2, command & ~(uint)PciConfigRegisters.CommandBusMaster);
        Transfer(guest, EduDevice.DmaBufferStart, ram + 0x3000, 16, toRam: true);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(edu.DmaErrors, Is.EqualTo(4));
            Assert.That(edu.RefusedDma, Is.EqualTo(1), "the SDK refused DMA with bus mastering off");
            Assert.That(edu.DmaBytes, Is.Zero);
            Assert.That(guest.Xen.Ram[0x3000], Is.EqualTo(0x5A), "guest memory untouched");
        }
    }

    // Found on real Xen: an Arm64 guest's RAM starts at GUEST_RAM0_BASE (1 GiB), beyond the 28 address bits of edu's
    // default DMA engine, so the real run gives edu 40. The simulated Arm64 guest now puts its RAM there too.
    [Test]
    public void QemusDefaultDmaWidthReachesNoArm64GuestRam()
    {
        var edu = new EduDevice();
        using var guest = new DeviceOnGuest(GuestArchitecture.Arm64, edu);
        Assert.That(guest.Xen.RamBase, Is.EqualTo(SimulationOptions.Arm64RamBase), "Xen's Arm guest layout");

        Transfer(guest, EduDevice.DmaBufferStart, guest.Xen.RamBase + 0x3000, 16, toRam: true);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(edu.DmaErrors, Is.EqualTo(1), "28 bits of 0x4000_3000 name no RAM");
            Assert.That(edu.DmaBytes, Is.Zero);
        }
    }

    // Issue 13, item 5. The old edu computed its factorial in posted work, on the loop, right after the write: the
    // guest's next access waited for all 2^32 multiplications (seconds) and found the busy bit already clear.
    [Test]
    public void TheFactorialRunsOffTheLoopWhileTheGuestIsServed([Values] GuestArchitecture architecture)
    {
        using var guest = new DeviceOnGuest(architecture, new EduDevice());
        guest.Write(0x08, 4, 0xFFFF_FFFF);
        guest.Write(0x04, 4, 0x0F0F_0F0F);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Read(0x04, 4), Is.EqualTo(0xF0F0_F0F0UL), "served while the factorial runs");
            Assert.That(guest.Read(0x20, 4) & 1, Is.EqualTo(1UL), "still computing: the work is not on the loop");
        }

        // Disposing the guest stops the server, which cancels the computation.
    }

    // Impossible settings are refused where the device is built, as the SDK's types do.
    [TestCase(0)]
    [TestCase(-1)]
    [TestCase(65)]
    public void RefusesADmaWidthOutsideOneToSixtyFourBits(int bits)
    {
        Assert.That(() => new EduDevice(bits), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("1 to 64 address bits"));
    }

    private static int DmaBitsFor(GuestArchitecture architecture) =>
        architecture == GuestArchitecture.Arm64 ? EduDevice.Arm64GuestDmaAddressBits : EduDevice.DefaultDmaAddressBits;

    // The class "a bounded queue that throws into the guest's write": edu posted its DMA with Post, which throws when
    // the server's posted-work queue is full — out of the vCPU's write, with the run bit left set, so that no later
    // transfer could ever start.
    [Test]
    public void ADmaTheServerCannotScheduleIsRefusedAndLeavesTheEngineIdle()
    {
        var edu = new EduDevice();
        edu.Attach(new FullQueueContext());
        edu.Write(edu.Registers.Region, 0x80, 8, 0x1000);
        edu.Write(edu.Registers.Region, 0x88, 8, EduDevice.DmaBufferStart);
        edu.Write(edu.Registers.Region, 0x90, 8, 16);

        Assert.That(() => edu.Write(edu.Registers.Region, 0x98, 8, 1), Throws.Nothing, "the guest's write is answered");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(edu.DmaRefused, Is.EqualTo(1));
            Assert.That(edu.Read(edu.Registers.Region, 0x98, 8) & 1, Is.Zero, "the run bit is clear: the engine is idle");
            Assert.That(edu.DmaBytes, Is.Zero);
        }
    }

    private static void Transfer(DeviceOnGuest guest, ulong source, ulong destination, ulong count, bool toRam, bool interrupt = false)
    {
        guest.Write(0x80, 8, source);
        guest.Write(0x88, 8, destination);
        guest.Write(0x90, 8, count);
        guest.Write(0x98, 8, 1 | (toRam ? 2UL : 0) | (interrupt ? 4UL : 0));
        Assert.That(Wait.Until(() => (guest.Read(0x98, 8) & 1) == 0), Is.True, "the run bit clears when the transfer ends");
        Assert.That(guest.Read(0x90, 8), Is.EqualTo(count), "the registers read back what was written");
    }

    /// <summary>A server whose posted-work queue is full: posts are refused (and <c>Post</c> throws, as the real one does).</summary>
    private sealed class FullQueueContext : IDeviceContext
    {
        public IGuestMemory Memory => throw new InvalidOperationException("not on the loop");

        public long RunNumber => 1;

        public void MapRegion(DeviceRegion region, ulong address)
        {
        }

        public void UnmapRegion(DeviceRegion region)
        {
        }

        public void Post(Action work) => throw new InvalidOperationException("The server's posted-work queue is full.");

        public bool TryPost(Action work) => false;

        public bool TryRunOffLoop<TResult>(Func<System.Threading.CancellationToken, TResult> work, Action<TResult> completion) => false;

        public bool TryRunOffLoop(OffLoopWork work) => false;

        public IOffLoopWorker CreateOffLoopWorker(string name, int threadCount, int capacity) => throw new NotSupportedException();
    }
}
