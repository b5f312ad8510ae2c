using System;
using System.Collections.Generic;
using System.Linq;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Pci;

/// <summary>Config-space semantics, decode gating, interrupts and DMA of a <see cref="PciDevice"/> behind a bridge.</summary>
[TestFixture]
public sealed class PciDeviceTests
{
    private static readonly PciSbdf s_slot = new(0, 0, 3, 0);

    [Test]
    public void SizingProbesAndDisabledDecodeNeverMapAnything([Values] GuestArchitecture architecture)
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(architecture, b => b.AddDevice(device, 3));
        ulong address = guest.Bar(s_slot, 1).BusAddress;
        int mappings = guest.Xen.Diagnostics.RangeClaims;

        // Sizing with decode on (Linux avoids it, but a guest may): the BAR stops decoding, nothing new is claimed.
        guest.Config(s_slot, PciConfigRegisters.Bar0 + 4, 4, uint.MaxValue);
        Assert.That(guest.Config(s_slot, PciConfigRegisters.Bar0 + 4, 4), Is.EqualTo(~4095u));
        Assert.That(device.Mmio.Address, Is.Null);
        guest.Config(s_slot, PciConfigRegisters.Bar0 + 4, 4, (uint)address);
        Assert.That(guest.Xen.Diagnostics.RangeClaims, Is.EqualTo(mappings + 1));

        // Decode off: moving the BAR maps nothing until memory decode is enabled again.
        uint command = guest.Config(s_slot, PciConfigRegisters.Command, 2);
        guest.Config(s_slot, PciConfigRegisters.Command, 2, command & ~(uint)PciConfigRegisters.CommandMemory);
        guest.Config(s_slot, PciConfigRegisters.Bar0 + 4, 4, (uint)address + 0x1_0000);
        Assert.That(device.Mmio.Address, Is.Null);
        Assert.That(guest.Xen.Diagnostics.RangeClaims, Is.EqualTo(mappings + 1));
        guest.Config(s_slot, PciConfigRegisters.Command, 2, command);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Mmio.Address, Is.EqualTo(address + 0x1_0000));
            Assert.That(guest.Xen.Diagnostics.RangeClaims, Is.EqualTo(mappings + 4), "memory decode re-maps BAR 1, BAR 2 and the ROM");
            Assert.That(guest.Read(guest.Bar(s_slot, 1) with { CpuAddress = address + 0x1_0000 }, 0, 4), Is.Zero);
        }
    }

    [Test]
    public void ConfigSpaceKeepsItsInvariantsUnderRandomAccesses([Values] GuestArchitecture architecture, [Values(1, 2, 3)] int seed)
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(architecture, b => b.AddDevice(device, 3));
        byte[] before = Dump(guest);
        var random = new Random(seed);
        for (int i = 0; i < 1500; i++)
        {
            int size = 1 << random.Next(3);
            int register = random.Next(0x100 / size) * size;
            if (random.Next(2) == 0)
            {
                guest.Config(s_slot, register, size, (uint)random.Next() ^ ((uint)random.Next(2) << 31));
            }
            else
            {
                guest.Config(s_slot, register, size);
            }
        }

        byte[] after = Dump(guest);
        using (Assert.EnterMultipleScope())
        {
            // Read-only identification never changes.
            Assert.That(after[0..4], Is.EqualTo(before[0..4]), "vendor and device");
            Assert.That(after[8..12], Is.EqualTo(before[8..12]), "revision and class");
            Assert.That(after[0x2C..0x30], Is.EqualTo(before[0x2C..0x30]), "subsystem");
            Assert.That(after[0x3D], Is.EqualTo((byte)1), "interrupt pin");

            // BAR type bits are hard-wired; address bits below the size read as zero.
            Assert.That(BitConverter.ToUInt32(after, 0x10) & 0x1F, Is.EqualTo(0x1u), "32-port I/O BAR");
            Assert.That(BitConverter.ToUInt32(after, 0x14) & 0xFFF, Is.Zero, "4 KiB memory BAR");
            Assert.That(BitConverter.ToUInt32(after, 0x18) & 0xFFFFF, Is.EqualTo(0xCu), "1 MiB 64-bit prefetchable BAR");
            Assert.That(BitConverter.ToUInt32(after, 0x24), Is.Zero, "no BAR 5");

            // The capability chain is intact, in order, and every capability keeps its id.
            byte[] expected = architecture == GuestArchitecture.X86 ? [0x05, 0x11, 0x10, 0x01, 0x09] : [0x10, 0x01, 0x09];
            Assert.That(Chain(after), Is.EqualTo(expected), "Arm64 hides MSI and MSI-X");
            Assert.That(after[6] & 0x10, Is.EqualTo(0x10), "capabilities bit");
        }
    }

    [Test]
    public void StatusErrorBitsAreWriteOneToClear()
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(device, 3));
        guest.Config(s_slot, PciConfigRegisters.Status, 2, 0xFFFF);
        Assert.That(guest.Config(s_slot, PciConfigRegisters.Status, 2), Is.EqualTo(0x0010u), "only the read-only capability bit remains");

        int pm = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityPowerManagement);
        guest.Config(s_slot, pm + 4, 2, 0x0003);
        Assert.That(guest.Config(s_slot, pm + 4, 2), Is.EqualTo(0x000Bu), "D3hot, No_Soft_Reset kept");
    }

    [Test]
    public void IntxFollowsTheLineAndTheDisableBit([Values] GuestArchitecture architecture)
    {
        var device = new ProbeDevice(messages: false);
        using var guest = new PciGuest(architecture, b => b.AddDevice(device, 3));
        bool Level() => guest.Platform is Arm64Platform arm
            ? guest.Xen.Interrupts.SpiInjections(arm.IntxSpi(3, 1)) > 0
            : guest.Xen.Interrupts.PciIntx(s_slot, 0);

        device.Line(true);
        Assert.That(Level(), Is.True);
        Assert.That(guest.Config(s_slot, PciConfigRegisters.Status, 2) & PciConfigRegisters.StatusInterrupt, Is.Not.Zero);
        device.Line(false);
        uint command = guest.Config(s_slot, PciConfigRegisters.Command, 2);
        guest.Config(s_slot, PciConfigRegisters.Command, 2, command | PciConfigRegisters.CommandInterruptDisable);
        device.Line(true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Config(s_slot, PciConfigRegisters.Status, 2) & PciConfigRegisters.StatusInterrupt, Is.Not.Zero, "status shows the line");
            if (guest.Platform is Arm64Platform arm)
            {
                Assert.That(guest.Xen.Interrupts.SpiInjections(arm.IntxSpi(3, 1)), Is.EqualTo(1), "one event, one injection; disabled lines inject nothing");
            }
            else
            {
                Assert.That(guest.Xen.Interrupts.PciIntx(s_slot, 0), Is.False, "INTx disable gates what the guest sees");
            }
        }
    }

    [Test]
    public void MsiMasksHoldsPendingAndDeliversOnUnmask()
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(device, 3));
        int msi = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsi);
        guest.Config(s_slot, msi + 4, 4, 0xFEE0_1000);
        guest.Config(s_slot, msi + 8, 4, 0);
        guest.Config(s_slot, msi + 12, 2, 0x4140);
        guest.Config(s_slot, msi + 16, 4, 0b10);                       // mask vector 1
        guest.Config(s_slot, msi + 2, 2, 0x0011);                      // enable, 2 vectors
        Assert.That(device.InterruptMode, Is.EqualTo(PciInterruptMode.Msi));

        device.Interrupt(0);
        device.Interrupt(1);
        Assert.That(guest.Xen.Interrupts.Msis, Is.EqualTo(new[] { (0xFEE0_1000UL, 0x4140u) }));
        Assert.That(guest.Config(s_slot, msi + 20, 4), Is.EqualTo(0b10u), "vector 1 pending");
        guest.Config(s_slot, msi + 16, 4, 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Xen.Interrupts.Msis.Last(), Is.EqualTo((0xFEE0_1000UL, 0x4141u)), "delivered on unmask, vector in the low data bits");
            Assert.That(guest.Config(s_slot, msi + 20, 4), Is.Zero);
        }
    }

    [Test]
    public void MsixTableMasksAndPendingBitsAreOwnedByTheSdk()
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(device, 3));
        AssignedBar bar = guest.Bar(s_slot, 1);
        int msix = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsix);
        Assert.That(guest.Config(s_slot, msix + 2, 2) & 0x7FF, Is.EqualTo(3u), "table size - 1");
        Assert.That(guest.Config(s_slot, msix + 4, 4), Is.EqualTo(0x801u), "table at 0x800 in BAR 1");

        guest.Config(s_slot, msix + 2, 2, 0xC000);                     // enable with the function masked
        guest.Write(bar, 0x800 + 32, 8, 0xFEE0_2000);                  // vector 2: address
        guest.Write(bar, 0x800 + 40, 4, 0x55);                         //           data
        guest.Write(bar, 0x800 + 44, 4, 0);                            //           unmask the entry
        device.Interrupt(2);
        Assert.That(guest.Xen.Interrupts.Msis, Is.Empty, "function mask holds it");
        Assert.That(guest.Read(bar, 0xC00, 8), Is.EqualTo(0b100UL), "pending in the PBA");
        guest.Config(s_slot, msix + 2, 2, 0x8000);                     // clear the function mask
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Xen.Interrupts.Msis, Is.EqualTo(new[] { (0xFEE0_2000UL, 0x55u) }));
            Assert.That(guest.Read(bar, 0xC00, 8), Is.Zero);
            Assert.That(device.Traffic.Any(t => t.Offset >= 0x800), Is.False, "the device never sees table or PBA accesses");
        }
    }

    [Test]
    public void AXenPirqMsixEntryIsDeliveredThoughItsMaskBitKeepsItsResetValue()
    {
        // Found on real Xen: a Linux HVM guest writes the pirq encoding (vector 0, the pirq in the destination id, ExtINT)
        // and masks through event channels, never through the table, so the entry's mask bit stays set from reset.
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(device, 3));
        AssignedBar bar = guest.Bar(s_slot, 1);
        int msix = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsix);
        guest.Config(s_slot, msix + 2, 2, 0x8000);                     // enable, function not masked
        guest.Write(bar, 0x800 + 16, 8, 0x100_FEE2_A000);                // vector 1: pirq 0x12A (0x100 in the high dword, 0x2A in dest)
        guest.Write(bar, 0x800 + 24, 4, 0x700);                        //           ExtINT, vector 0
        Assert.That(guest.Read(bar, 0x800 + 28, 4) & 1, Is.EqualTo(1UL), "the mask bit keeps its reset value");

        device.Interrupt(1);
        device.Interrupt(2);                                           // vector 2: never programmed (all zero), stays held

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Xen.Interrupts.Msis, Is.EqualTo(new[] { (0x100_FEE2_A000UL, 0x700u) }));
            Assert.That(guest.Read(bar, 0xC00, 8), Is.EqualTo(0b100UL), "only the unprogrammed vector 2 is pending");
        }
    }

    [Test]
    public void ArmHidesMessageInterruptsAndRefusesDevicesWithoutAPin()
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.Arm64, b => b.AddDevice(device, 3));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsi), Is.Zero);
            Assert.That(guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsix), Is.Zero);
            Assert.That(guest.FindCapability(s_slot, PciConfigRegisters.CapabilityPciExpress), Is.Not.Zero);
        }

        using var xen = new SimulatedHypervisor(new SimulationOptions { Architecture = GuestArchitecture.Arm64 });
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        var bridge = new PciHostBridge(server, new Arm64Platform());
        Assert.That(() => bridge.AddDevice(new ProbeDevice(interruptPin: 0), 4),
            Throws.InvalidOperationException.With.Message.Contains("delivers no MSI or MSI-X"));
    }

    [Test]
    public void DmaNeedsBusMastering()
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(device, 3));
        "dma!"u8.CopyTo(guest.Xen.Ram.Slice(0x4000));
        var buffer = new byte[4];
        Assert.That(device.DmaOnLoop(0x4000, buffer), Is.True);
        Assert.That(buffer, Is.EqualTo("dma!"u8.ToArray()));

        uint command = guest.Config(s_slot, PciConfigRegisters.Command, 2);
        guest.Config(s_slot, PciConfigRegisters.Command, 2, command & ~(uint)PciConfigRegisters.CommandBusMaster);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.DmaOnLoop(0x4000, buffer), Is.False);
            Assert.That(device.RefusedDma, Is.EqualTo(1));
        }
    }

    [Test]
    public void ABarMovedWhileAnotherVcpuAccessesItIsNeverHalfMapped()
    {
        var device = new ProbeDevice();
        using var guest = new PciGuest(GuestArchitecture.Arm64, b => b.AddDevice(device, 3), vcpus: 2);
        AssignedBar bar = guest.Bar(s_slot, 1);
        guest.Write(bar, 0, 4, 0x600D);
        ulong[] homes = [bar.BusAddress, bar.BusAddress + 0x10_0000];
        using var stop = new System.Threading.CancellationTokenSource();
        int good = 0, aborted = 0, raced = 0, reads = 0;
        using var started = new System.Threading.ManualResetEventSlim();
        var reader = System.Threading.Tasks.Task.Factory.StartNew(() =>
        {
            var cpu = guest.Xen.Vcpu(1);
            started.Set();
            while (!stop.IsCancellationRequested)
            {
                System.Threading.Interlocked.Increment(ref reads);
                foreach (ulong home in homes)
                {
                    try
                    {
                        // Xen routes when the vCPU sends; a move handled just before the read leaves the read unclaimed
                        // by the time the server serves it: all-ones, as a master abort reads on real hardware.
                        ulong value = cpu.ReadMmio(home, 4);
                        good += value == 0x600D ? 1 : 0;
                        raced += value == 0xFFFF_FFFF ? 1 : value == 0x600D ? 0 : throw new InvalidOperationException($"read 0x{value:x}");
                    }
                    catch (GuestDataAbortException)
                    {
                        aborted++;   // the BAR was elsewhere at that moment: an abort, as on real Arm
                    }
                }
            }
        }, System.Threading.Tasks.TaskCreationOptions.LongRunning);

        // Move the BAR at least 300 times and until the reader has raced a good number of the moves and seen the
        // device at least once (on a loaded machine its thread may start late, or every read of a burst may race a
        // move), always ending at an even count: back at the first home.
        Assert.That(started.Wait(TimeSpan.FromSeconds(30)), Is.True, "the reader started");
        for (int i = 0;
             i < 300 || (i % 2 != 0) || ((System.Threading.Volatile.Read(ref reads) < 200 || System.Threading.Volatile.Read(ref good) == 0) && i < 1_000_000);
             i++)
        {
            guest.Config(s_slot, PciConfigRegisters.Bar0 + 4, 4, (uint)homes[(i + 1) % 2]);
        }

        stop.Cancel();
        reader.Wait();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(good, Is.GreaterThan(0));
            TestContext.Out.WriteLine($"{good} reads saw the device, {raced} raced a move (all-ones), {aborted} hit the old home (abort)");
            Assert.That(device.MappingConflicts, Is.Zero);
            Assert.That(guest.Xen.CrashReason, Is.Null);
            Assert.That(guest.Read(bar, 0, 4), Is.EqualTo(0x600DUL), "BAR back at its first home");
        }
    }

    [Test]
    public void TheArmBridgeDescribesItselfForTheDeviceTree()
    {
        using var guest = new PciGuest(GuestArchitecture.Arm64, b => b.AddDevice(new ProbeDevice(), 3));
        string node = guest.Bridge.DescribeDeviceTreeNode();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(node, Does.Contain("compatible = \"pci-host-ecam-generic\";"));
            Assert.That(node, Does.Contain("reg = <0x0 0x10000000 0x0 0x100000>;"));
            Assert.That(node, Does.Contain("bus-range = <0x0 0x0>;"));
            Assert.That(node, Does.Contain("0x01000000 0x0 0x1000 0x0 0x3eff1000 0x0 0xf000"), "the I/O range offers the bus I/O window (from 0x1000) at the same offset in the PIO aperture");
            Assert.That(node, Does.Contain("0x02000000 0x0 0x23000000 0x0 0x23000000 0x0 0x10000000"));
            Assert.That(node, Does.Contain("0x43000000 0x1 0x0 0x1 0x0 0x1 0x0"));
            Assert.That(node, Does.Contain("0x1800 0x0 0x0 0x1 0xfde8 0x0 0xf 0x4"), "device 3 INTA -> SPI 47 (44 + 3)");
        }
    }

    // Found on real Xen: libxl's vGIC node has #address-cells = 0, so an interrupt-map entry is the child's 3 address
    // cells and pin, the phandle, and the 3 specifier cells — no parent unit address. Parsed as Linux's of_irq_parse_raw
    // walks it, every device and pin must land on the SPI the bridge raises.
    [TestCase(0)]
    [TestCase(2)]
    public void TheInterruptMapParsesAsTheGuestWalksIt(int parentAddressCells)
    {
        using var guest = new PciGuest(GuestArchitecture.Arm64, b => b.AddDevice(new ProbeDevice(), 3));
        var arm = (Arm64Platform)guest.Bridge.Platform;
        string node = guest.Bridge.DescribeDeviceTreeNode(0xfde8, parentAddressCells);
        string map = node.Substring(node.IndexOf("interrupt-map = <", System.StringComparison.Ordinal) + "interrupt-map = <".Length);
        map = map.Substring(0, map.IndexOf('>', System.StringComparison.Ordinal));
        uint[] cells = System.Array.ConvertAll(
            map.Split(new[] { ' ', '\t', '\n' }, System.StringSplitOptions.RemoveEmptyEntries),
            c => System.Convert.ToUInt32(c, 16));
        int stride = 3 + 1 + 1 + parentAddressCells + 3;

        Assert.That(cells.Length, Is.EqualTo(16 * stride), "four devices by four pins");
        for (int at = 0; at < cells.Length; at += stride)
        {
            int device = (int)(cells[at] >> 11);
            int pin = (int)cells[at + 3];
            int specifier = at + 5 + parentAddressCells;
            using (Assert.EnterMultipleScope())
            {
                Assert.That(cells[at + 4], Is.EqualTo(0xfde8u), "the GIC's phandle");
                Assert.That(cells[specifier], Is.Zero, "an SPI");
                Assert.That(cells[specifier + 1] + 32, Is.EqualTo(arm.IntxSpi(device, pin)), $"device {device} pin {pin}");
                Assert.That(cells[specifier + 2], Is.EqualTo(4u), "level high");
            }
        }
    }

    private static byte[] Dump(PciGuest guest) => Enumerable.Range(0, 64).SelectMany(i => BitConverter.GetBytes(guest.Config(s_slot, i * 4, 4))).ToArray();

    private static List<byte> Chain(byte[] config)
    {
        var ids = new List<byte>();
        for (int at = config[0x34], hops = 0; at != 0 && hops < 48; at = config[at + 1], hops++)
        {
            ids.Add(config[at]);
        }

        return ids;
    }
}
