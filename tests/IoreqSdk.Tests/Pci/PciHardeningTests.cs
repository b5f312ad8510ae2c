using System.Linq;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Pci;

/// <summary>
/// Guest-driven wrong answers of issue 13: what a guest programs into BARs and the command register must decode and
/// interrupt as hardware does, never more and never less.
/// </summary>
[TestFixture]
public sealed class PciHardeningTests
{
    private static readonly PciSbdf s_slot = new(0, 0, 3, 0);

    [Test]
    public void A64BitBarWhoseLowHalfIsAllOnesDecodesThere([Values] GuestArchitecture architecture)
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(architecture, b => b.AddDevice(device, 3));
        const ulong Address = 0x1_FFF0_0000;                              // 1 MiB BAR: every writable low bit set
        int low = PciConfigRegisters.Bar0 + (4 * device.Mmio64.Index);

        guest.Config(s_slot, low, 4, unchecked((uint)Address));
        guest.Config(s_slot, low + 4, 4, (uint)(Address >> 32));
        AssignedBar moved = guest.Bar(s_slot, device.Mmio64.Index) with { BusAddress = Address, CpuAddress = Address };
        guest.Write(moved, 0x10, 4, 0xC0FFEE);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Mmio64.Address, Is.EqualTo(Address), "a real address, not a sizing probe");
            Assert.That(guest.Read(moved, 0x10, 4), Is.EqualTo(0xC0FFEEUL));
            Assert.That(device.MappingConflicts, Is.Zero);
        }

        // The probe itself still never decodes: all-ones in the low half over a zero high half, then in both.
        guest.Config(s_slot, low + 4, 4, 0);
        guest.Config(s_slot, low, 4, uint.MaxValue);
        Assert.That(device.Mmio64.Address, Is.Null, "low half probing, high half 0");
        guest.Config(s_slot, low + 4, 4, uint.MaxValue);
        Assert.That(device.Mmio64.Address, Is.Null, "both halves probing");
    }

    [Test]
    public void MsiIsNotDeliveredWhileBusMasteringIsOff()
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(device, 3));
        int msi = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsi);
        guest.Config(s_slot, msi + 4, 4, 0xFEE0_1000);
        guest.Config(s_slot, msi + 12, 2, 0x4140);
        guest.Config(s_slot, msi + 2, 2, 0x0001);
        BusMaster(guest, false);

        device.Interrupt(0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Xen.Interrupts.Msis, Is.Empty, "a message is a memory write: no bus mastering, no message");
            Assert.That(device.RefusedMessages, Is.EqualTo(1));
        }

        BusMaster(guest, true);
        device.Interrupt(0);
        Assert.That(guest.Xen.Interrupts.Msis, Is.EqualTo(new[] { (0xFEE0_1000UL, 0x4140u) }));
    }

    [Test]
    public void MsixIsNotDeliveredWhileBusMasteringIsOff()
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(device, 3));
        AssignedBar bar = guest.Bar(s_slot, 1);
        int msix = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsix);
        guest.Config(s_slot, msix + 2, 2, 0x8000);
        guest.Write(bar, 0x800, 8, 0xFEE0_2000);
        guest.Write(bar, 0x808, 4, 0x55);
        guest.Write(bar, 0x80C, 4, 0);
        BusMaster(guest, false);

        device.Interrupt(0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Xen.Interrupts.Msis, Is.Empty);
            Assert.That(device.RefusedMessages, Is.EqualTo(1));
        }

        BusMaster(guest, true);
        device.Interrupt(0);
        Assert.That(guest.Xen.Interrupts.Msis, Is.EqualTo(new[] { (0xFEE0_2000UL, 0x55u) }));
    }

    [Test]
    public void IntxStaysLowWhileMessageInterruptsAreEnabled()
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(device, 3));
        int msi = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsi);
        guest.Config(s_slot, msi + 2, 2, 0x0001);

        device.Line(true);
        Assert.That(guest.Xen.Interrupts.PciIntx(s_slot, 0), Is.False, "a function using MSI must not use INTx");
        guest.Config(s_slot, msi + 2, 2, 0);
        Assert.That(guest.Xen.Interrupts.PciIntx(s_slot, 0), Is.True, "the line shows again once MSI is off");
    }

    [Test]
    public void ABarProgrammedOverAnotherFunctionsIsACountedConflictNotAnException([Values] GuestArchitecture architecture)
    {
        var first = new ProbeDevice();
        var second = new ProbeDevice();
        var secondSlot = new PciSbdf(0, 0, 4, 0);
        using var guest = new PciGuest(architecture, b =>
        {
            b.AddDevice(first, 3);
            b.AddDevice(second, 4);
        });
        ulong taken = first.Mmio.Address!.Value;
        ulong own = second.Mmio.Address!.Value;
        AssignedBar firstBar = guest.Bar(s_slot, first.Mmio.Index);
        guest.Write(firstBar, 0x10, 4, 0xC0FFEE);

        Assert.That(() => guest.Config(secondSlot, PciConfigRegisters.Bar0 + (4 * second.Mmio.Index), 4, (uint)taken), Throws.Nothing);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.Mmio.Address, Is.Null, "the overlapping BAR does not decode");
            Assert.That(second.MappingConflicts, Is.EqualTo(1));
            Assert.That(first.Mmio.Address, Is.EqualTo(taken), "the BAR that was there first keeps its addresses");
            Assert.That(guest.Read(firstBar, 0x10, 4), Is.EqualTo(0xC0FFEEUL));
        }

        // Moved back where the firmware put it, it decodes again; the conflict stays counted once.
        guest.Config(secondSlot, PciConfigRegisters.Bar0 + (4 * second.Mmio.Index), 4, (uint)own);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.Mmio.Address, Is.EqualTo(own));
            Assert.That(second.MappingConflicts, Is.EqualTo(1));
        }
    }

    [TestCase(0x3EFF_8000UL, TestName = "AnArmMemoryBarDecodesOnlyInsideTheBridgesWindows(PIO aperture)")]
    [TestCase(0x1000_0000UL, TestName = "AnArmMemoryBarDecodesOnlyInsideTheBridgesWindows(ECAM)")]
    [TestCase(0x4000_0000UL, TestName = "AnArmMemoryBarDecodesOnlyInsideTheBridgesWindows(guest RAM)")]
    public void AnArmMemoryBarDecodesOnlyInsideTheBridgesWindows(ulong address)
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.Arm64, b => b.AddDevice(device, 3));
        var arm = (Arm64Platform)guest.Platform;
        int mappings = guest.Xen.Diagnostics.RangeClaims;

        guest.Config(s_slot, PciConfigRegisters.Bar0 + 4, 4, (uint)address);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Mmio.Address, Is.Null, "outside the memory windows nothing decodes");
            Assert.That(device.MappingConflicts, Is.EqualTo(1));
            Assert.That(guest.Xen.Diagnostics.RangeClaims, Is.EqualTo(mappings), "nothing was claimed from Xen");
        }

        if (arm.PioAperture.Contains(address, 1))
        {
            // The I/O BAR placed where the memory BAR was refused decodes: nothing stole its addresses.
            uint port = (uint)(address - arm.PioAperture.Base);
            guest.Config(s_slot, PciConfigRegisters.Bar0, 4, port);
            Assert.That(device.IoBar.Address, Is.EqualTo((ulong)port));
        }

        // Inside the 32-bit window it decodes again.
        ulong inside = arm.Memory.Base + 0x10_0000;
        guest.Config(s_slot, PciConfigRegisters.Bar0 + 4, 4, (uint)inside);
        Assert.That(device.Mmio.Address, Is.EqualTo(inside));
    }

    [Test]
    public void AFunctionInD3HotDecodesNoBarsUntilBackInD0([Values] GuestArchitecture architecture)
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(architecture, b => b.AddDevice(device, 3));
        ulong address = guest.Bar(s_slot, 1).CpuAddress;
        int pm = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityPowerManagement);

        guest.Config(s_slot, pm + 4, 2, 0x0003);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Mmio.Address, Is.Null, "D3hot: configuration space only");
            Assert.That(device.IoBar.Address, Is.Null);
            Assert.That(guest.Config(s_slot, PciConfigRegisters.VendorId, 2), Is.EqualTo(0x1af4u), "configuration still answers");
        }

        guest.Config(s_slot, pm + 4, 2, 0x0000);
        Assert.That(device.Mmio.Address, Is.EqualTo(address), "back in D0 (No_Soft_Reset: the BARs kept their addresses)");
    }

    [Test]
    public void ImpossibleDeclarationsFailWhereTheDeviceIsBuilt()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => new DeclaringDevice(d => d.Bar((1UL << 63) + 1)), Throws.InstanceOf<System.ArgumentOutOfRangeException>().With.Message.Contains("2^63"),
                "a size past 2^63 has no power of two to round up to (it used to loop forever)");
            Assert.That(() => new DeclaringDevice(d => d.Rom(1UL << 40)), Throws.InstanceOf<System.ArgumentOutOfRangeException>().With.Message.Contains("2 GiB"));
            Assert.That(() => new DeclaringDevice(_ => { }, classCode: 0x0100_0000), Throws.InstanceOf<System.ArgumentOutOfRangeException>().With.Message.Contains("24 bits"));
            Assert.That(() => new DeclaringDevice(d => { d.PowerManagement(); d.PowerManagement(); }), Throws.InvalidOperationException);
        }
    }

    private static void BusMaster(PciGuest guest, bool on)
    {
        uint command = guest.Config(s_slot, PciConfigRegisters.Command, 2);
        guest.Config(s_slot, PciConfigRegisters.Command, 2, on ? command | PciConfigRegisters.CommandBusMaster : command & ~(uint)PciConfigRegisters.CommandBusMaster);
    }

    private sealed class DeclaringDevice : PciDevice
    {
        public DeclaringDevice(System.Action<DeclaringDevice> declare, uint classCode = 0xff0000)
            : base("declaring", new PciIdentity { VendorId = 0x1af4, DeviceId = 1, ClassCode = classCode }) => declare(this);

        public void Bar(ulong size) => AddMemoryBar(0, size, is64Bit: true);

        public void Rom(ulong size) => AddExpansionRom(size);

        public void PowerManagement() => AddPowerManagementCapability();

        protected override ulong ReadBar(PciBar bar, ulong offset, int size) => 0;

        protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
        {
        }
    }
}
