using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Simulation;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// PCI configuration space and BARs through the platform's host bridge — x86 CF8/CFC (PCI_CONFIG requests) or Arm64
/// ECAM (MMIO) — on the sample devices: any register at any width, command and BAR writes (sizing, moves, decode
/// toggles), capability writes (MSI, MSI-X, virtio's vendor capabilities), then accesses to wherever the BARs are,
/// including the MSI-X table and PBA.
/// </summary>
public static class PciTarget
{
    private const int MaxOperations = 48;
    private static readonly byte[] s_capabilityIds = [0x05, 0x09, 0x10, 0x11];

    /// <summary>Runs one input.</summary>
    /// <param name="bytes">The input.</param>
    /// <param name="addDevices">The devices on the bridge; the SDK's sample devices unless given.</param>
    /// <param name="bringUpKey">A name for the device set <paramref name="addDevices"/> builds, to enumerate it once per process (see <see cref="FuzzGuest"/>).</param>
    public static void Run(ReadOnlySpan<byte> bytes, Action<FuzzGuestSetup>? addDevices = null, string? bringUpKey = null)
    {
        var input = new FuzzInput(bytes);
        GuestArchitecture architecture = (input.U8() & 1) == 0 ? GuestArchitecture.X86 : GuestArchitecture.Arm64;
        using var guest = new FuzzGuest(architecture, 1, null, addDevices, bringUpKey);
        var pci = new GuestPci(guest.Xen.Vcpu(0), guest.Platform);
        for (int i = 0; i < MaxOperations && input.HasMore; i++)
        {
            Operate(guest, pci, ref input);
        }

        guest.Finish();
    }

    private static void Operate(FuzzGuest guest, GuestPci pci, ref FuzzInput input)
    {
        SimulatedVcpu cpu = guest.Xen.Vcpu(0);
        bool x86 = guest.Xen.Architecture == GuestArchitecture.X86;
        PciSbdf function = PickFunction(guest, ref input);
        switch (input.Choose(8))
        {
            case 0:
                {
                    int register = input.U16() & 0xFFF;
                    int size = 1 << input.Choose(3);
                    guest.Step(() => pci.ReadConfig(function, register, size));
                    break;
                }

            case 1:
                {
                    int register = input.U16() & 0xFFF;
                    int size = 1 << input.Choose(3);
                    uint value = input.U32();
                    guest.Step(() => pci.WriteConfig(function, register, size, value));
                    break;
                }

            case 2:
                {
                    // The command register: decode and bus mastering toggled under the BARs.
                    uint value = input.U16();
                    guest.Step(() => pci.WriteConfig(function, PciConfigRegisters.Command, 2, value));
                    break;
                }

            case 3:
                {
                    // A BAR: sizing probe, a move inside or outside the platform's windows, or garbage.
                    int bar = input.Choose(7);
                    int register = bar == 6 ? 0x30 : 0x10 + (4 * bar);
                    uint value = input.Choose(4) switch
                    {
                        0 => 0xFFFF_FFFF,
                        1 => (uint)guest.Platform.MemoryWindow.Base + ((uint)input.U16() << 12),
                        2 => (uint)guest.Platform.IoWindow.Base + ((uint)input.U8() << 4),
                        _ => input.U32(),
                    };
                    guest.Step(() => pci.WriteConfig(function, register, 4, value));
                    if ((value & 1) == 0 && value != 0xFFFF_FFFF)
                    {
                        guest.AddWindow(new FuzzWindow(RegionKind.Mmio, value & ~0xFUL, 0x1000));
                    }

                    break;
                }

            case 4:
                {
                    // A capability's registers: found by walking the list, as a driver does, then written.
                    byte id = s_capabilityIds[input.Choose(s_capabilityIds.Length)];
                    int offset = input.U8();
                    int size = 1 << input.Choose(3);
                    uint value = input.U32();
                    guest.Step(() =>
                    {
                        int at = pci.FindCapability(function, id);
                        if (at != 0)
                        {
                            pci.WriteConfig(function, (at + offset) & 0xFFF, size, value);
                        }
                    });
                    break;
                }

            case 5:
            case 6:
                {
                    // Wherever a BAR is (MSI-X table and PBA included): loads and stores of any width.
                    bool port = x86 && input.Bool();
                    ulong address = guest.PickAddress(ref input, port ? RegionKind.Port : RegionKind.Mmio);
                    int size = port ? 1 << input.Choose(3) : (int)input.Width();
                    bool write = input.Bool();
                    ulong value = input.U64();
                    guest.Step(() => Access(cpu, port, address, size, write, value));
                    break;
                }

            case 7 when x86:
                {
                    // Raw CF8 then a CFC access of any width at any of its four ports: what Xen decodes into PCI_CONFIG.
                    uint latch = input.U32();
                    ushort port = (ushort)(0xCFC + input.Choose(4));
                    int size = 1 << input.Choose(3);
                    bool write = input.Bool();
                    uint value = input.U32();
                    guest.Step(() =>
                    {
                        cpu.Out(0xCF8, 4, latch);
                        Access(cpu, port: true, port, size, write, value);
                    });
                    break;
                }

            default:
                break;
        }
    }

    private static PciSbdf PickFunction(FuzzGuest guest, ref FuzzInput input)
    {
        byte choice = input.U8();
        if ((choice & 0xC0) == 0xC0 || guest.Functions.Count == 0)
        {
            // Anything on bus 0: absent functions must answer all-ones.
            return new PciSbdf(0, 0, input.U8() & 31, input.U8() & 7);
        }

        return guest.Functions[choice % guest.Functions.Count].Address;
    }

    private static void Access(SimulatedVcpu cpu, bool port, ulong address, int size, bool write, ulong value)
    {
        if (port)
        {
            if (write)
            {
                cpu.Out((ushort)address, size, (uint)value);
            }
            else
            {
                cpu.In((ushort)address, size);
            }
        }
        else if (write)
        {
            cpu.WriteMmio(address, size, value);
        }
        else
        {
            cpu.ReadMmio(address, size);
        }
    }
}
