using System;
using CsCheck;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Fuzz.Properties;

/// <summary>
/// BAR decode ⇔ command bits: for any sequence of command values and BAR programming (addresses, sizing probes), a
/// memory BAR decodes exactly while memory space is enabled and it holds an address, and an I/O BAR exactly while I/O
/// space is enabled — the guest's access reaches the device then, and never otherwise (PCI Local Bus 3.0 §6.2.2).
/// </summary>
[TestFixture]
public sealed class BarDecodeProperties
{
    private static readonly PciSbdf s_slot = new(0, 0, 3, 0);

    [Test]
    public void AMemoryBarDecodesExactlyWhileMemorySpaceIsOnAndItHoldsAnAddress([Values] GuestArchitecture architecture)
    {
        // (command, programme a real address or a sizing probe, which 4 KiB slot of the window)
        Gen.Select(Gen.UShort, Gen.Bool, Gen.Int[0, 15]).Array[1, 12].Sample(
            steps =>
            {
                var device = new ProbeDevice();
                using var guest = new PciGuest(architecture, b => b.AddDevice(device, 3));
                int register = PciConfigRegisters.Bar0 + (4 * device.Mmio.Index);
                ulong programmed = guest.Bar(s_slot, device.Mmio.Index).BusAddress;
                foreach ((ushort command, bool probe, int slot) in steps)
                {
                    ulong address = guest.Platform.MemoryWindow.Base + 0x10_0000 + ((ulong)slot << 12);
                    guest.Config(s_slot, register, 4, probe ? uint.MaxValue : (uint)address);
                    if (!probe)
                    {
                        programmed = address;
                    }

                    guest.Config(s_slot, PciConfigRegisters.Command, 2, command);
                    bool decodes = (command & PciConfigRegisters.CommandMemory) != 0 && !probe;
                    if ((device.Mmio.Address is not null) != decodes || (decodes && device.Mmio.Address != programmed))
                    {
                        throw new AssertionException($"command 0x{command:x4}, {(probe ? "a sizing probe" : $"0x{address:x}")}: the BAR decodes at {(device.Mmio.Address is ulong at ? $"0x{at:x}" : "nothing")}");
                    }

                    int before = device.Traffic.Count;
                    Access(guest, programmed);
                    if ((device.Traffic.Count > before) != decodes)
                    {
                        throw new AssertionException($"command 0x{command:x4}: a load at 0x{programmed:x} {(decodes ? "did not reach" : "reached")} the device");
                    }
                }
            },
            iter: 20,
            threads: 1);
    }

    [Test]
    public void AnIoBarDecodesExactlyWhileIoSpaceIsOn()
    {
        Gen.UShort.Array[1, 12].Sample(
            commands =>
            {
                var device = new ProbeDevice();
                using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(device, 3));
                AssignedBar bar = guest.Bar(s_slot, device.IoBar.Index);
                foreach (ushort command in commands)
                {
                    guest.Config(s_slot, PciConfigRegisters.Command, 2, command);
                    bool decodes = (command & PciConfigRegisters.CommandIo) != 0;
                    int before = device.Traffic.Count;
                    guest.Read(bar, 0, 1);
                    if ((device.IoBar.Address is not null) != decodes || (device.Traffic.Count > before) != decodes)
                    {
                        throw new AssertionException($"command 0x{command:x4}: the I/O BAR {(decodes ? "does not decode" : "decodes")}");
                    }
                }
            },
            iter: 20,
            threads: 1);
    }

    private static void Access(PciGuest guest, ulong address)
    {
        try
        {
            guest.Cpu.ReadMmio(address, 4);
        }
        catch (GuestDataAbortException)
        {
            // Arm64: nothing claims the address (decode off), so the guest takes a data abort.
        }
    }
}
