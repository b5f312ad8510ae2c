using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Simulation;
using NUnit.Framework;

namespace MyDevice.Tests;

/// <summary>The device on a simulated x86 and Arm64 guest, reached as its driver reaches it.</summary>
[TestFixture]
public sealed class ChecksumDeviceTests
{
    private const ulong BufferOffset = 0x10000;

    [Test]
    public void TheFirmwareFindsItAndItIdentifiesItself([Values] GuestArchitecture architecture)
    {
        using var guest = SimulatedPciGuest.Create(new ChecksumDevice(), architecture);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Function.VendorId, Is.EqualTo((ushort)0x1234));
            Assert.That(guest.Function.DeviceId, Is.EqualTo((ushort)0xC5C5));
            Assert.That(guest.ReadBar(0, ChecksumDevice.Id, 4), Is.EqualTo((ulong)ChecksumDevice.Identification));
        }
    }

    [Test]
    public void ItChecksumsAGuestBufferByDmaAndInterrupts([Values] GuestArchitecture architecture)
    {
        using var guest = SimulatedPciGuest.Create(new ChecksumDevice(), architecture);
        EnableBusMastering(guest);
        byte[] data = [1, 2, 3, 250];
        data.CopyTo(guest.Xen.Ram.Slice((int)BufferOffset));

        Checksum(guest, guest.Xen.RamBase + BufferOffset, (uint)data.Length);

        Assert.That(SimulatedPciGuest.WaitUntil(() => guest.Intx!.Assertions == 1), Is.True, "the interrupt came");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.ReadBar(0, ChecksumDevice.Status, 4), Is.EqualTo((ulong)ChecksumDevice.StatusDone));
            Assert.That(guest.ReadBar(0, ChecksumDevice.Sum, 4), Is.EqualTo(256UL));
        }

        guest.WriteBar(0, ChecksumDevice.Status, 4, ChecksumDevice.StatusDone);
        Assert.That(SimulatedPciGuest.WaitUntil(() => !guest.Intx!.IsAsserted), Is.True, "the acknowledgement lowered the line");
    }

    [Test]
    public void WithoutBusMasteringTheDeviceReadsNothingAndSaysSo([Values] GuestArchitecture architecture)
    {
        using var guest = SimulatedPciGuest.Create(new ChecksumDevice(), architecture);
        uint command = guest.ReadConfig(PciConfigRegisters.Command, 2);
        guest.WriteConfig(PciConfigRegisters.Command, 2, command & ~(uint)PciConfigRegisters.CommandBusMaster);

        Checksum(guest, guest.Xen.RamBase + BufferOffset, 16);

        Assert.That(SimulatedPciGuest.WaitUntil(() => guest.Intx!.Assertions == 1), Is.True);
        Assert.That(guest.ReadBar(0, ChecksumDevice.Status, 4), Is.EqualTo((ulong)ChecksumDevice.StatusError));
    }

    [Test]
    public void AHostileLengthOrAddressIsAnErrorNotACrash([Values] GuestArchitecture architecture, [Values((uint)ChecksumDevice.MaxLength + 1, uint.MaxValue)] uint length)
    {
        using var guest = SimulatedPciGuest.Create(new ChecksumDevice(), architecture);
        EnableBusMastering(guest);

        Checksum(guest, guest.Xen.RamBase + BufferOffset, length);
        Assert.That(SimulatedPciGuest.WaitUntil(() => guest.Intx!.Assertions == 1), Is.True);
        Assert.That(guest.ReadBar(0, ChecksumDevice.Status, 4), Is.EqualTo((ulong)ChecksumDevice.StatusError));

        guest.WriteBar(0, ChecksumDevice.Status, 4, ChecksumDevice.StatusError);
        Checksum(guest, ulong.MaxValue - 8, 16);   // not guest RAM
        Assert.That(SimulatedPciGuest.WaitUntil(() => guest.Intx!.Assertions == 2), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.ReadBar(0, ChecksumDevice.Status, 4), Is.EqualTo((ulong)ChecksumDevice.StatusError));
            Assert.That(guest.Xen.CrashReason, Is.Null);
        }
    }

    private static void EnableBusMastering(SimulatedPciGuest guest)
    {
        uint command = guest.ReadConfig(PciConfigRegisters.Command, 2);
        guest.WriteConfig(PciConfigRegisters.Command, 2, command | PciConfigRegisters.CommandBusMaster);
    }

    private static void Checksum(SimulatedPciGuest guest, ulong address, uint length)
    {
        guest.WriteBar(0, ChecksumDevice.AddressLow, 4, (uint)address);
        guest.WriteBar(0, ChecksumDevice.AddressHigh, 4, address >> 32);
        guest.WriteBar(0, ChecksumDevice.Length, 4, length);
        guest.WriteBar(0, ChecksumDevice.Doorbell, 4, 1);
    }
}
