using System;
using System.Collections.Generic;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Pci;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>What virtio-pci's function shows in configuration space: ids, BAR, and the capabilities byte for byte (virtio 1.2 §4.1.2, §4.1.4).</summary>
[TestFixture]
public sealed class VirtioPciLayoutTests
{
    [TestCase((ushort)1, 0x02_00_00u, TestName = "network: Ethernet controller")]
    [TestCase((ushort)2, 0x01_00_00u, TestName = "block: mass storage")]
    [TestCase((ushort)3, 0x07_80_00u, TestName = "console: communication controller")]
    [TestCase((ushort)4, 0xFF_00_00u, TestName = "entropy: no defined class")]
    public void Ids_follow_the_device_type(ushort type, uint classCode)
    {
        var transport = new VirtioPciTransport(new TypedDevice(type));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(transport.Identity.VendorId, Is.EqualTo((ushort)0x1AF4));
            Assert.That(transport.Identity.DeviceId, Is.EqualTo((ushort)(0x1040 + type)));
            Assert.That(transport.Identity.RevisionId, Is.EqualTo((byte)1));
            Assert.That(transport.Identity.SubsystemVendorId, Is.EqualTo((ushort)0x1AF4));
            Assert.That(transport.Identity.SubsystemId, Is.EqualTo((ushort)(0x1040 + type)), "0x40 or more for a non-transitional device");
            Assert.That(transport.Identity.ClassCode, Is.EqualTo(classCode));
            Assert.That(transport.Identity.InterruptPin, Is.EqualTo((byte)1), "INTA, for platforms without MSI-X");
        }
    }

    [Test]
    public void A_device_the_transport_cannot_carry_is_refused()
    {
        var attached = new TypedDevice(4);
        _ = new VirtioPciTransport(attached);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => new VirtioPciTransport(new TypedDevice(0x40)), Throws.InstanceOf<ArgumentOutOfRangeException>(), "device ids stop at 0x107F");
            Assert.That(() => new VirtioPciTransport(attached), Throws.InvalidOperationException, "one transport per device");
            Assert.That(() => new VirtioPciTransport(null!), Throws.ArgumentNullException);
            Assert.That(new VirtioPciTransport(new TypedDevice(4), classCode: 0x12_34_56).Identity.ClassCode, Is.EqualTo(0x12_34_56u));
        }
    }

    [Test]
    public void The_capabilities_are_byte_exact_and_linked([Values] GuestArchitecture architecture)
    {
        using var rig = new VirtioPciRig(architecture);
        var caps = new List<(int Offset, byte[] Bytes)>();
        int at = (int)rig.Guest.ReadConfig(PciConfigRegisters.CapabilitiesPointer, 1);
        while (at != 0 && caps.Count < 16)
        {
            byte[] bytes = new byte[20];
            for (int i = 0; i < bytes.Length; i++)
            {
                bytes[i] = (byte)rig.Guest.ReadConfig(at + i, 1);
            }

            // Each capability's own bytes: its length byte says how many (the rest is the next one's).
            caps.Add((at, bytes[0] == PciConfigRegisters.CapabilityVendor ? bytes[..bytes[2]] : bytes));
            at = bytes[1];
        }

        int Next(int i) => i + 1 < caps.Count ? caps[i + 1].Offset : 0;
        byte[] Cap(int i, byte type, uint offset, uint length, int size = 16, uint extra = 0)
        {
            byte[] expected = new byte[size];
            expected[0] = 0x09;
            expected[1] = (byte)Next(i);
            expected[2] = (byte)size;
            expected[3] = type;
            expected[4] = 0;    // BAR 0
            BitConverter.GetBytes(offset).CopyTo(expected, 8);
            BitConverter.GetBytes(length).CopyTo(expected, 12);
            if (size > 16)
            {
                BitConverter.GetBytes(extra).CopyTo(expected, 16);
            }

            return expected;
        }

        bool msix = architecture == GuestArchitecture.X86;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(caps, Has.Count.EqualTo(msix ? 6 : 5), "five virtio capabilities, and MSI-X where the platform delivers messages");
            Assert.That(caps[0].Bytes, Is.EqualTo(Cap(0, 1, 0x0000, 0x38)), "COMMON_CFG");
            Assert.That(caps[1].Bytes, Is.EqualTo(Cap(1, 3, 0x1000, 1)), "ISR_CFG");
            Assert.That(caps[2].Bytes, Is.EqualTo(Cap(2, 4, 0x2000, 8)), "DEVICE_CFG");
            Assert.That(caps[3].Bytes, Is.EqualTo(Cap(3, 2, 0x3000, 2 * 4, size: 20, extra: 4)), "NOTIFY_CFG, notify_off_multiplier 4");
            Assert.That(caps[4].Bytes, Is.EqualTo(Cap(4, 5, 0, 0, size: 20)), "PCI_CFG, its window closed");
            if (msix)
            {
                Assert.That(caps[5].Bytes[0], Is.EqualTo(PciConfigRegisters.CapabilityMsix));
                Assert.That(caps[5].Bytes[1], Is.Zero, "the list ends");
                Assert.That(BitConverter.ToUInt16(caps[5].Bytes, 2) & 0x7FF, Is.EqualTo(2), "three vectors: config and one per queue (the driver enabled MSI-X: bit 15)");
                Assert.That(BitConverter.ToUInt32(caps[5].Bytes, 4), Is.EqualTo(0x4000u), "table in BAR 0 on its own page");
                Assert.That(BitConverter.ToUInt32(caps[5].Bytes, 8), Is.EqualTo(0x5000u), "PBA in BAR 0 on the next page");
            }

            Assert.That(caps.TrueForAll(c => (c.Offset & 3) == 0), Is.True);
            Assert.That(rig.Guest.ReadConfig(PciConfigRegisters.Bar0, 4) & 0xF, Is.EqualTo(0x4u), "64-bit memory, not prefetchable (ISR reads clear)");
            Assert.That(rig.Guest.Bar(0).Size, Is.EqualTo(0x8000UL));
        }
    }

    [Test]
    public void The_driver_reads_the_layout_the_capabilities_describe()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86, new PciEchoDevice(queues: 3, configSize: 0x1800));
        GuestVirtioPci driver = rig.Driver;
        rig.Negotiate();
        rig.StartQueue(2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(driver.DeviceType, Is.EqualTo(PciEchoDevice.TypeId));
            Assert.That(driver.Common, Is.EqualTo(new VirtioPciStructure(driver.Common.CapabilityOffset, 0, 0, 0x38)));
            Assert.That(driver.DeviceConfig!.Length, Is.EqualTo(0x1800u));
            Assert.That(driver.Notifications.Offset, Is.EqualTo(0x4000u), "after the two pages the config takes");
            Assert.That(driver.NotifyOffMultiplier, Is.EqualTo(4u));
            Assert.That(driver.NotifyAddress(2), Is.EqualTo(0x4000UL + 8), "queue_notify_off 2 times 4");
            Assert.That(rig.Transport.MsixVectors, Is.EqualTo(4));
        }
    }

    [Test]
    public void Guest_writes_to_the_structure_capabilities_change_nothing()
    {
        using var rig = new VirtioPciRig(GuestArchitecture.X86);
        int first = rig.Driver.Common.CapabilityOffset;
        int end = rig.Driver.ConfigWindow!.CapabilityOffset;
        var before = new uint[(end - first) / 4];
        for (int i = 0; i < before.Length; i++)
        {
            before[i] = rig.Guest.ReadConfig(first + (4 * i), 4);
        }

        for (int i = 0; i < before.Length; i++)
        {
            rig.Guest.WriteConfig(first + (4 * i), 4, uint.MaxValue);
        }

        var after = new uint[before.Length];
        for (int i = 0; i < after.Length; i++)
        {
            after[i] = rig.Guest.ReadConfig(first + (4 * i), 4);
        }

        Assert.That(after, Is.EqualTo(before));
    }

    /// <summary>A device of any type, for the identification registers.</summary>
    private sealed class TypedDevice : VirtioDevice
    {
        public TypedDevice(ushort type)
            : base(type, 0, new ushort[] { 8 }, 0)
        {
        }

        protected override void OnQueueNotified(VirtioQueue queue)
        {
        }
    }
}
