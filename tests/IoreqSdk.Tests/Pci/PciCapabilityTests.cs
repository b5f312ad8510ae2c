using System;
using System.Collections.Generic;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Simulation;
using NUnit.Framework;

namespace IoreqSdk.Tests.Pci;

/// <summary>Open capabilities: a layout the device declares (read-only, writable, write-1-to-clear) and hooks on the guest's accesses.</summary>
[TestFixture]
public sealed class PciCapabilityTests
{
    private const byte HookedId = 0x0D;

    [Test]
    public void Capabilities_of_any_id_are_linked_in_order_with_dword_aligned_pointers([Values] GuestArchitecture architecture)
    {
        using var guest = SimulatedPciGuest.Create(new CapabilityDevice(), architecture);
        var found = new List<(int Offset, uint Id)>();
        int at = (int)guest.ReadConfig(PciConfigRegisters.CapabilitiesPointer, 1);
        while (at != 0 && found.Count < 48)
        {
            found.Add((at, guest.ReadConfig(at, 1)));
            at = (int)guest.ReadConfig(at + 1, 1);
        }

        var device = (CapabilityDevice)guest.Device;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.ReadConfig(PciConfigRegisters.Status, 2) & PciConfigRegisters.StatusCapabilities, Is.Not.Zero);
            Assert.That(found, Is.EqualTo(new[]
            {
                (0x40, (uint)PciConfigRegisters.CapabilityPowerManagement),
                (device.Vendor.Offset, (uint)PciConfigRegisters.CapabilityVendor),
                (device.Hooked.Offset, (uint)HookedId),
            }));
            Assert.That(found.TrueForAll(f => (f.Offset & 3) == 0), Is.True, "capabilities start dword-aligned");
            Assert.That(guest.ReadConfig(device.Vendor.Offset + 2, 1), Is.EqualTo(3u + 4), "a vendor capability's length byte");
            Assert.That(guest.FindCapability(HookedId), Is.EqualTo(device.Hooked.Offset));
        }
    }

    [Test]
    public void A_vendor_capability_takes_the_guest_writes_its_mask_allows_and_no_other()
    {
        using var guest = SimulatedPciGuest.Create(new CapabilityDevice());
        var device = (CapabilityDevice)guest.Device;
        int at = device.Vendor.Offset;
        uint header = guest.ReadConfig(at, 2) | (guest.ReadConfig(at + 2, 1) << 16);

        guest.WriteConfig(at, 1, 0xFF);
        guest.WriteConfig(at + 2, 1, 0xFF);
        guest.WriteConfig(at + 3, 1, 0xFF);
        guest.WriteConfig(at + 4, 4, 0xFFFF_FFFF);
        uint ones = guest.ReadConfig(at + 4, 4);
        guest.WriteConfig(at + 4, 2, 0x0000);
        uint zeroed = guest.ReadConfig(at + 4, 4);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.ReadConfig(at, 2) | (guest.ReadConfig(at + 2, 1) << 16), Is.EqualTo(header), "id, next and length are read-only");
            Assert.That(guest.ReadConfig(at + 3, 1), Is.EqualTo(0x5Au), "payload byte 0 is read-only");

            // payload 1..3: initial 0x11 0x22 0x33, writable masks 0xFF 0x0F 0x00; the dword at +4 also holds padding.
            Assert.That(ones & 0xFF_FFFF, Is.EqualTo(0x33_2FFFu));
            Assert.That(zeroed & 0xFF_FFFF, Is.EqualTo(0x33_2000u));
            Assert.That(device.Vendor.Read8(4), Is.EqualTo(0x00), "the device reads what the guest wrote");
        }
    }

    [Test]
    public void Write_one_to_clear_bits_clear_on_1_and_keep_on_0()
    {
        using var guest = SimulatedPciGuest.Create(new CapabilityDevice());
        var device = (CapabilityDevice)guest.Device;
        int status = device.Hooked.Offset + CapabilityDevice.StatusField;

        guest.WriteConfig(status, 2, 0x0000);
        uint untouched = guest.ReadConfig(status, 2);
        guest.WriteConfig(status, 2, 0x8001);
        uint cleared = guest.ReadConfig(status, 2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(untouched, Is.EqualTo(0xC003u), "0 leaves write-1-to-clear bits alone");
            Assert.That(cleared, Is.EqualTo(0x4002u), "1 clears the write-1-to-clear bits (0x8001) and leaves the read-only ones (0x4002)");
        }
    }

    [Test]
    public void Hooks_see_every_access_inside_the_capability_with_its_relative_offset_and_width()
    {
        using var guest = SimulatedPciGuest.Create(new CapabilityDevice());
        var device = (CapabilityDevice)guest.Device;
        int start = device.Hooked.Offset;
        var expected = new List<(bool, int, int)>();
        for (int size = 1; size <= 4; size <<= 1)
        {
            for (int at = 0; at < CapabilityDevice.HookedLength; at += size)
            {
                guest.ReadConfig(start + at, size);
                guest.WriteConfig(start + at, size, 0);
                expected.Add((false, at, size));
                expected.Add((true, at, size));
            }
        }

        Assert.That(device.Accesses, Is.EqualTo(expected));
    }

    [Test]
    public void A_read_hook_answers_for_its_field_in_every_width()
    {
        using var guest = SimulatedPciGuest.Create(new CapabilityDevice());
        var device = (CapabilityDevice)guest.Device;
        int counter = device.Hooked.Offset + CapabilityDevice.CounterField;

        uint first = guest.ReadConfig(counter, 4);
        uint second = guest.ReadConfig(counter, 4);
        uint low = guest.ReadConfig(counter, 1);
        uint word = guest.ReadConfig(counter, 2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(second, Is.EqualTo(first + 1), "computed on each read");
            Assert.That(first & 0xFFFF_0000, Is.EqualTo(0xC0DE_0000u));
            Assert.That(low, Is.LessThanOrEqualTo(0xFFu), "masked to the width");
            Assert.That(word, Is.LessThanOrEqualTo(0xFFFFu));
        }
    }

    [Test]
    public void Hostile_accesses_never_reach_a_hook_or_change_a_byte()
    {
        using var guest = SimulatedPciGuest.Create(new CapabilityDevice());
        var device = (CapabilityDevice)guest.Device;
        int start = device.Hooked.Offset;
        uint before = guest.ReadConfig(start + 8, 4);
        device.Accesses.Clear();

        // Misaligned dword and word accesses (refused by config space), and accesses in the padding after the capability.
        guest.WriteConfig(start + 9, 4, 0xFFFF_FFFF);
        guest.WriteConfig(start + 9, 2, 0xFFFF);
        uint misaligned = guest.ReadConfig(start + 1, 4);
        guest.WriteConfig(start + CapabilityDevice.HookedLength, 2, 0xFFFF);
        uint padding = guest.ReadConfig(start + CapabilityDevice.HookedLength, 2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Accesses, Is.Empty);
            Assert.That(guest.ReadConfig(start + 8, 4), Is.EqualTo(before));
            Assert.That(misaligned, Is.EqualTo(uint.MaxValue));
            Assert.That(padding, Is.Zero);
        }
    }

    [Test]
    public void A_hook_that_throws_is_contained_and_counted()
    {
        using var guest = SimulatedPciGuest.Create(new CapabilityDevice());
        var device = (CapabilityDevice)guest.Device;
        int trap = device.Hooked.Offset + 8;
        long faults = guest.Server.Statistics.DeviceFaults;
        device.Trap = true;

        uint read = guest.ReadConfig(trap, 2);
        guest.WriteConfig(trap, 2, 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(read, Is.EqualTo(0xFFFFu), "a faulting read answers all-ones");
            Assert.That(guest.Server.Statistics.DeviceFaults, Is.EqualTo(faults + 2));
            Assert.That(guest.ReadConfig(PciConfigRegisters.VendorId, 2), Is.EqualTo(0x1AF4u), "the server still serves");
        }
    }

    [Test]
    public void Declarations_are_checked()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => new PciCapability(HookedId, 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
            Assert.That(() => new PciCapability(PciConfigRegisters.CapabilityVendor, 2), Throws.InstanceOf<ArgumentOutOfRangeException>());
            Assert.That(() => new PciCapability(HookedId, 193), Throws.InstanceOf<ArgumentOutOfRangeException>());
            Assert.That(() => new PciCapability(HookedId, 8).Read8(2), Throws.InvalidOperationException, "not added yet");
            Assert.That(() => new CapabilityDevice(addTwice: true), Throws.InvalidOperationException);
            Assert.That(() => new CapabilityDevice(badField: true), Throws.InstanceOf<ArgumentOutOfRangeException>());
        }
    }

    /// <summary>Power management, a vendor capability with writable payload, and a hooked capability of its own id.</summary>
    private sealed class CapabilityDevice : PciDevice
    {
        public const int HookedLength = 14;
        public const int StatusField = 2;
        public const int CounterField = 4;

        public CapabilityDevice(bool addTwice = false, bool badField = false)
            : base("caps", new PciIdentity { VendorId = 0x1AF4, DeviceId = 0x10F1, ClassCode = 0xFF0000, InterruptPin = 1 })
        {
            AddMemoryBar(0, 4096);
            AddPowerManagementCapability();
            Vendor = AddVendorCapability([0x5A, 0x11, 0x22, 0x33], [0x00, 0xFF, 0x0F, 0x00]);
            Hooked = AddCapability(new HookedCapability(this));
            if (addTwice)
            {
                AddCapability(Hooked);
            }

            if (badField)
            {
                Hooked.SetWritable(HookedLength - 1, 2, 0xFFFF);
            }
        }

        public PciCapability Vendor { get; }

        public HookedCapability Hooked { get; }

        public List<(bool Write, int At, int Size)> Accesses { get; } = new();

        public bool Trap { get; set; }

        protected override ulong ReadBar(PciBar bar, ulong offset, int size) => 0;

        protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
        {
        }

        internal sealed class HookedCapability : PciCapability
        {
            private readonly CapabilityDevice _device;
            private uint _reads;

            public HookedCapability(CapabilityDevice device)
                : base(HookedId, HookedLength) => _device = device;

            protected override void OnAdded()
            {
                Write16(StatusField, 0xC003);
                SetWriteOneToClear(StatusField, 2, 0x8001);
                SetWritable(8, 4, 0xFFFF_FFFF);
            }

            protected override void OnRead(int at, int size, ref uint value)
            {
                if (_device.Trap)
                {
                    throw new InvalidOperationException("trap");
                }

                _device.Accesses.Add((false, at, size));
                if (at == CounterField)
                {
                    value = 0xC0DE_0000 | _reads++;
                }
            }

            protected override void OnWritten(int at, int size)
            {
                if (_device.Trap)
                {
                    throw new InvalidOperationException("trap");
                }

                _device.Accesses.Add((true, at, size));
            }
        }
    }
}
