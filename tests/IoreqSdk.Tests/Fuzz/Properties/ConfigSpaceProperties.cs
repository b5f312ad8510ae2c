using System;
using System.Collections.Generic;
using CsCheck;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Fuzz.Properties;

/// <summary>
/// Configuration space's read-after-write rules, for any sequence of naturally aligned guest writes of any width:
/// read-only bytes never change, writable bits take the written value, other bits keep theirs, and a write never sets
/// a write-1-to-clear bit (PCI Local Bus 3.0 §6.1, §6.2.3; PCIe 6.0 §7.7.2 for MSI-X). Checked through the platform's
/// config mechanism (CF8/CFC, ECAM) against a byte model of the masks.
/// </summary>
[TestFixture]
public sealed class ConfigSpaceProperties
{
    private static readonly PciSbdf s_slot = new(0, 0, 3, 0);

    // The header's registers outside the BARs and the ROM (their rules are the BAR properties'), as dwords.
    private static readonly int[] s_headerDwords = [0x00, 0x04, 0x08, 0x0C, 0x28, 0x2C, 0x34, 0x38, 0x3C];

    [Test]
    public void EveryWriteReadsBackThroughTheMasks([Values] GuestArchitecture architecture)
    {
        // (which dword, width code, offset in the dword, value): widths 1, 2, 4 at natural alignment.
        Gen<(int, int, int, uint)> write = Gen.Select(Gen.Int[0, 12], Gen.Int[0, 2], Gen.Int[0, 3], Gen.UInt);

        write.Array[1, 24].Sample(
            writes =>
            {
                var device = new ProbeDevice();
                using var guest = new PciGuest(architecture, b => b.AddDevice(device, 3));
                int msix = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsix);
                int msi = guest.FindCapability(s_slot, PciConfigRegisters.CapabilityMsi);
                // Arm64 hides MSI and MSI-X (Xen injects no messages there): only the header is checked then.
                int[] dwords = msi == 0 ? s_headerDwords : [.. s_headerDwords, msix, msi + 4, msi + 8, msi + 12];
                Dictionary<int, byte> writable = WritableMasks(msix, msi);
                var model = new Dictionary<int, byte>();
                foreach (int dword in dwords)
                {
                    for (int i = 0; i < 4; i++)
                    {
                        model[dword + i] = (byte)guest.Config(s_slot, dword + i, 1);
                    }
                }

                foreach ((int index, int widthCode, int within, uint value) in writes)
                {
                    int size = 1 << widthCode;
                    int register = dwords[index % dwords.Length] + (within & (4 - size));
                    guest.Config(s_slot, register, size, value);
                    for (int i = 0; i < size; i++)
                    {
                        byte mask = writable.TryGetValue(register + i, out byte m) ? m : (byte)0;
                        byte b = (byte)(value >> (8 * i));
                        model[register + i] = (byte)((model[register + i] & ~mask) | (b & mask));
                    }

                    foreach (int dword in dwords)
                    {
                        uint expected = (uint)(model[dword] | (model[dword + 1] << 8) | (model[dword + 2] << 16) | (model[dword + 3] << 24));
                        uint actual = guest.Config(s_slot, dword, 4);
                        if (actual != expected)
                        {
                            throw new AssertionException($"after a {size}-byte write of 0x{value:x} at 0x{register:x2}: dword 0x{dword:x2} reads 0x{actual:x8}, the masks say 0x{expected:x8}");
                        }
                    }
                }
            },
            iter: 25,
            threads: 1);
    }

    [Test]
    public void AWriteNeverSetsAWriteOneToClearStatusBit([Values] GuestArchitecture architecture)
    {
        Gen.UShort.Array[1, 16].Sample(
            values =>
            {
                using var guest = new PciGuest(architecture, b => b.AddDevice(new ProbeDevice(), 3));
                uint before = guest.Config(s_slot, PciConfigRegisters.Status, 2);
                foreach (ushort value in values)
                {
                    guest.Config(s_slot, PciConfigRegisters.Status, 2, value);
                    uint after = guest.Config(s_slot, PciConfigRegisters.Status, 2);
                    if ((after & ~before) != 0)
                    {
                        throw new AssertionException($"writing 0x{value:x4} to status set bits 0x{after & ~before:x4}");
                    }
                }
            },
            iter: 25,
            threads: 1);
    }

    /// <summary>The bits a guest may write, by byte: the PCI spec's read-write fields as the SDK implements them.</summary>
    private static Dictionary<int, byte> WritableMasks(int msix, int msi)
    {
        var masks = new Dictionary<int, byte>
        {
            [PciConfigRegisters.Command] = 0x47,            // I/O, memory, bus master, parity error response
            [PciConfigRegisters.Command + 1] = 0x05,        // SERR#, INTx disable
            [PciConfigRegisters.CacheLineSize] = 0xFF,
            [PciConfigRegisters.LatencyTimer] = 0xFF,
            [PciConfigRegisters.InterruptLine] = 0xFF,
        };
        if (msi == 0)
        {
            return masks;
        }

        var messages = new Dictionary<int, byte>
        {
            [msix + 3] = 0xC0,                              // MSI-X enable, function mask
            [msi + 4] = 0xFC,                               // message address (dword aligned), 64-bit
            [msi + 5] = 0xFF,
            [msi + 6] = 0xFF,
            [msi + 7] = 0xFF,
            [msi + 8] = 0xFF,
            [msi + 9] = 0xFF,
            [msi + 10] = 0xFF,
            [msi + 11] = 0xFF,
            [msi + 12] = 0xFF,                              // message data
            [msi + 13] = 0xFF,
        };
        foreach (KeyValuePair<int, byte> mask in messages)
        {
            masks[mask.Key] = mask.Value;
        }

        return masks;
    }
}
