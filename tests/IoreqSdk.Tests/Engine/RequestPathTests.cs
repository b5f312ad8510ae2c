using System;
using System.Buffers.Binary;
using System.Linq;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>Every request type and width, from a simulated guest vCPU through Xen's rules to a device and back.</summary>
[TestFixture]
public sealed class RequestPathTests
{
    private const ulong Mmio = 0xFEB0_0000;

    [Test]
    public void MmioReadsAndWritesOfEveryWidthRoundTrip([Values] GuestArchitecture architecture, [Values(1, 2, 4, 8)] int size)
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(architecture, 1, device);
        ulong value = 0x8877_6655_4433_2211UL & (size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1);

        guest.Cpu.WriteMmio(Mmio + 0x10, size, value);
        ulong read = guest.Cpu.ReadMmio(Mmio + 0x10, size);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(read, Is.EqualTo(value));

            // On Arm64 Xen 4.17 sends garbage above the access size; the device must see it masked.
            Assert.That(device.Calls[0], Is.EqualTo((true, 0x10UL, size, value)));
            Assert.That(guest.Server.Statistics.MmioRequests, Is.EqualTo(2));
            Assert.That(guest.Xen.CrashReason, Is.Null);
        }
    }

    [Test]
    public void AcceptedWidthsTheDeviceDoesNotImplementAreSplitOrMerged()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x100, Mmio, AccessWidths.DWord, accepted: AccessWidths.All);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);

        guest.Cpu.WriteMmio(Mmio, 8, 0x1122_3344_5566_7788);   // split into two 4-byte writes
        guest.Cpu.WriteMmio(Mmio + 1, 1, 0xAB);                // read-modify-write of the containing dword
        ulong word = guest.Cpu.ReadMmio(Mmio + 2, 2);           // extracted from a dword read

        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Calls.All(c => c.Size == 4), Is.True, "the device only ever sees 4-byte accesses");
            Assert.That(guest.Cpu.ReadMmio(Mmio, 8), Is.EqualTo(0x1122_3344_5566_AB88UL));
            Assert.That(word, Is.EqualTo(0x5566UL));
        }
    }

    [Test]
    public void PortIoAndStringInstructionsGoThroughGuestRam()
    {
        var device = new RegisterFile(RegionKind.Port, 8, 0x3F8);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        guest.Cpu.Out(0x3F8, 1, 0x41);
        Assert.That(guest.Cpu.In(0x3F8, 1), Is.EqualTo(0x41));

        // rep outsb from RAM 0x2000..0x2003: four writes to the same port, in order.
        "WXYZ"u8.CopyTo(guest.Xen.Ram.Slice(0x2000));
        device.Calls.Clear();
        guest.Cpu.RepOuts(0x3F9, 1, 0x2000, 4);
        Assert.That(device.Calls.Select(c => (char)c.Value), Is.EqualTo("WXYZ".ToCharArray()));

        // rep insw with the direction flag: RAM addresses step downwards.
        guest.Cpu.Out(0x3FA, 2, 0xBEEF);
        guest.Cpu.RepIns(0x3FA, 2, 0x3006, 3, down: true);
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(guest.Xen.Ram.Slice(0x3002)), Is.EqualTo(0xBEEF));
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(guest.Xen.Ram.Slice(0x3004)), Is.EqualTo(0xBEEF));
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(guest.Xen.Ram.Slice(0x3006)), Is.EqualTo(0xBEEF));
    }

    [Test]
    public void RepStosAndRepMovsCoverEveryElement()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        guest.Cpu.RepStos(Mmio + 0x100, 4, 0xA5A5_A5A5, 16);
        Assert.That(Enumerable.Range(0, 16).Select(i => guest.Cpu.ReadMmio(Mmio + 0x100 + (ulong)(i * 4), 4)), Is.All.EqualTo(0xA5A5_A5A5UL));

        for (int i = 0; i < 64; i++)
        {
            guest.Xen.Ram[0x5000 + i] = (byte)i;
        }

        guest.Cpu.RepMovs(Mmio + 0x200, 0x5000, 8, 8, toDevice: true);
        guest.Cpu.RepMovs(Mmio + 0x200, 0x6000, 8, 8, toDevice: false);
        Assert.That(guest.Xen.Ram.Slice(0x6000, 64).ToArray(), Is.EqualTo(guest.Xen.Ram.Slice(0x5000, 64).ToArray()));
    }

    [Test]
    public void PciConfigThroughTheCf8LatchReachesTheClaimedFunctionOnly()
    {
        var config = new ConfigSpace();
        var sbdf = new PciSbdf(0, 0, 5, 0);
        using var guest = new SimulatedGuest(new SimulationOptions(), s => s.AddPciFunction(sbdf, config));
        guest.Cpu.Out(0xCF8, 4, 0x8000_0000 | (5u << 11) | 0x10);
        guest.Cpu.Out(0xCFE, 2, 0x1234);                 // register 0x12, 2 bytes
        uint read = guest.Cpu.In(0xCFC, 4);

        guest.Cpu.Out(0xCF8, 4, 0x8000_0000 | (6u << 11)); // device 6: nobody claims it
        using (Assert.EnterMultipleScope())
        {
            Assert.That(config.Writes, Is.EqualTo(new[] { (0x12, 2, 0x1234u) }));
            Assert.That(read, Is.EqualTo(0x1234_0000u));
            Assert.That(guest.Cpu.In(0xCFC, 4), Is.EqualTo(0xFFFF_FFFFu));
        }
    }

    [Test]
    public void UnclaimedAccessesFollowTheArchitecture()
    {
        using var x86 = new SimulatedGuest(GuestArchitecture.X86, 1, new RegisterFile(RegionKind.Mmio, 0x1000, Mmio));
        Assert.That(x86.Cpu.ReadMmio(0xDEAD_0000, 4), Is.EqualTo(0xFFFF_FFFFUL));

        using var arm = new SimulatedGuest(GuestArchitecture.Arm64, 1, new RegisterFile(RegionKind.Mmio, 0x1000, Mmio));
        Assert.That(() => arm.Cpu.ReadMmio(0xDEAD_0000, 4), Throws.TypeOf<GuestDataAbortException>());

        // An access that straddles the end of a claimed range is not routed at all (whole access inside one range).
        Assert.That(x86.Cpu.ReadMmio(Mmio + 0xFFE, 4), Is.EqualTo(0xFFFF_FFFFUL));
    }

    [Test]
    public void BufferedVgaWritesAreDrainedBeforeTheNextSynchronousRequest()
    {
        var vga = new RegisterFile(RegionKind.Mmio, 0x20000, 0xA0000);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, vga);
        for (int i = 0; i < 100; i++)
        {
            guest.Cpu.WriteMmio(0xA0000 + (ulong)(i * 8), 8, 0x0101_0101_0101_0101UL * (ulong)i);
        }

        // The synchronous read comes after the buffered writes and must observe all of them.
        ulong last = guest.Cpu.ReadMmio(0xA0000 + (99 * 8), 8);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(last, Is.EqualTo(0x0101_0101_0101_0101UL * 99));
            Assert.That(guest.Server.Statistics.BufferedEntries, Is.EqualTo(100));
            Assert.That(vga.Calls.Take(100).Select(c => c.Size), Is.All.EqualTo(8), "each 8-byte pair arrives as one write");
            Assert.That(guest.Cpu.CompletedRequests, Is.EqualTo(1), "only the read blocked the vCPU");
        }
    }

    [Test]
    public void TimeOffsetIsRaisedAsAnEvent()
    {
        long? delta = null;
        using var guest = new SimulatedGuest(new SimulationOptions(), s => s.TimeOffsetChanged += (_, e) => delta = e.DeltaSeconds,
            new RegisterFile(RegionKind.Mmio, 0x1000, Mmio));
        guest.Xen.ChangeRtcOffset(-3600);
        guest.Cpu.ReadMmio(Mmio, 4);   // a synchronous request drains the ring first
        Assert.That(delta, Is.EqualTo(-3600));
    }

    [Test]
    public void InvalidateDropsEveryGuestMappingBeforeTheVcpuContinues()
    {
        var device = new RegisterFile(RegionKind.Port, 8, 0x3F8);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        guest.Cpu.RepOuts(0x3F8, 1, 0x2000, 4);
        guest.Cpu.RepOuts(0x3F8, 1, 0x9000, 4);
        Assert.That(guest.Xen.OutstandingGuestMappings, Is.EqualTo(2));

        guest.Cpu.RemoveFrameAndInvalidate(0x9);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Xen.OutstandingGuestMappings, Is.Zero);
            Assert.That(guest.Server.Statistics.InvalidateRequests, Is.EqualTo(1));
        }

        // The removed frame is no longer RAM: a string request naming it is answered, its elements dropped.
        guest.Cpu.RepOuts(0x3F8, 1, 0x9000, 4);
        Assert.That(guest.Server.Statistics.GuestMemoryFaults, Is.EqualTo(1));
    }

    [Test]
    public void AThrowingDeviceIsContainedAndCounted()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { ThrowAt = offset => offset == 0x40 };
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        guest.Cpu.WriteMmio(Mmio + 0x40, 4, 1);
        ulong read = guest.Cpu.ReadMmio(Mmio + 0x40, 4);
        guest.Cpu.WriteMmio(Mmio, 4, 7);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(read, Is.EqualTo(0xFFFF_FFFFUL));
            Assert.That(guest.Server.Statistics.DeviceFaults, Is.EqualTo(2));
            Assert.That(guest.Cpu.ReadMmio(Mmio, 4), Is.EqualTo(7UL), "the server keeps serving");
        }
    }

    // A device's Name is its own code too: a getter that throws while its fault is reported must not take the fault
    // out of the loop's containment (the vCPU would be left unanswered and the loop would end).
    [Test]
    public void A_device_whose_name_throws_while_its_fault_is_reported_is_still_contained()
    {
        var device = new ThrowingNameDevice(Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        ulong read = guest.Cpu.ReadMmio(Mmio, 4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(read, Is.EqualTo(0xFFFF_FFFFUL));
            Assert.That(guest.Server.Statistics.DeviceFaults, Is.EqualTo(1));
            Assert.That(guest.Cpu.ReadMmio(Mmio, 4), Is.EqualTo(0xFFFF_FFFFUL), "the server keeps serving");
            Assert.That(guest.Server.Statistics.DeviceFaults, Is.EqualTo(2));
        }
    }

    private sealed class ThrowingNameDevice : IDeviceModel
    {
        private readonly DeviceRegion[] _regions;
        private bool _attached;

        public ThrowingNameDevice(ulong address)
        {
            _regions = [new DeviceRegion(this, 0, RegionKind.Mmio, 0x1000, AccessWidths.All, address)];
        }

        // Readable while the server is built (it names the device in its checks), throwing once serving.
        public string Name => _attached ? throw new InvalidOperationException("name bug") : "throwing-name";

        public System.Collections.Generic.IReadOnlyList<DeviceRegion> Regions => _regions;

        public void Attach(IDeviceContext context) => _attached = true;

        public ulong Read(DeviceRegion region, ulong offset, int size) => throw new InvalidOperationException("device bug");

        public void Write(DeviceRegion region, ulong offset, int size, ulong value) => throw new InvalidOperationException("device bug");
    }

    private sealed class ConfigSpace : IPciConfigSpace
    {
        private uint _register10;

        public System.Collections.Generic.List<(int Register, int Size, uint Value)> Writes { get; } = new();

        public uint ReadConfig(int register, int size) => register == 0x10 ? _register10 : 0;

        public void WriteConfig(int register, int size, uint value)
        {
            Writes.Add((register, size, value));
            if (register == 0x12 && size == 2)
            {
                _register10 = (_register10 & 0xFFFF) | (value << 16);
            }
        }
    }
}
