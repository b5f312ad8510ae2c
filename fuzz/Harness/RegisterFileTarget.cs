using System;
using System.Collections.Generic;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// The register files of the UART (the PCI 16550) and edu: register accesses of any width at any offset of their BARs,
/// edu's factorial and DMA engine pointed anywhere in or out of guest RAM, host bytes arriving at the UART meanwhile.
/// </summary>
public static class RegisterFileTarget
{
    private const int MaxOperations = 48;
    private static readonly int[] s_eduRegisters = [0x00, 0x04, 0x08, 0x20, 0x24, 0x60, 0x64, 0x80, 0x88, 0x90, 0x98];

    /// <summary>Runs one input.</summary>
    /// <param name="bytes">The input.</param>
    public static void Run(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        GuestArchitecture architecture = (input.U8() & 1) == 0 ? GuestArchitecture.X86 : GuestArchitecture.Arm64;
        EduDevice? edu = null;
        PciSerialDevice? serial = null;
        using var guest = new FuzzGuest(architecture, 1, null, setup =>
        {
            // Edu reaches all of an Arm64 guest's RAM (at 1 GiB) only with 40 DMA address bits.
            edu = new EduDevice(architecture == GuestArchitecture.Arm64 ? EduDevice.Arm64GuestDmaAddressBits : EduDevice.DefaultDmaAddressBits);
            serial = new PciSerialDevice(_ => { });
            setup.Bridge.AddDevice(edu, 3);
            setup.Bridge.AddDevice(serial, 4);
        }, bringUpKey: "registers");
        AssignedBar eduBar = Bar(guest, 3);
        AssignedBar serialBar = Bar(guest, 4);
        var pci = new GuestPci(guest.Xen.Vcpu(0), guest.Platform);
        bool largeFactorial = false;
        for (int i = 0; i < MaxOperations && input.HasMore; i++)
        {
            switch (input.Choose(6))
            {
                case 0:
                    {
                        // An edu register (or any offset) at any width.
                        ulong offset = input.Choose(4) == 0 ? input.U16() % eduBar.Size : (ulong)s_eduRegisters[input.Choose(s_eduRegisters.Length)];
                        int size = (int)input.Width();
                        bool write = input.Bool();
                        ulong value = input.U64();
                        guest.Step(() =>
                        {
                            if (write)
                            {
                                pci.WriteBar(eduBar, offset, size, value);
                            }
                            else
                            {
                                pci.ReadBar(eduBar, offset, size);
                            }
                        });
                        break;
                    }

                case 1:
                    {
                        // Edu's DMA engine: source, destination, count and command, then the status until done (bounded).
                        ulong source = input.Bool() ? guest.PickRamAddress(ref input) : EduDevice.DmaBufferStart + input.U16();
                        ulong destination = input.Bool() ? guest.PickRamAddress(ref input) : EduDevice.DmaBufferStart + input.U16();
                        ulong count = input.Choose(4) == 0 ? input.U64() : input.U16();
                        ulong command = input.U8();
                        guest.Step(() =>
                        {
                            pci.WriteBar(eduBar, 0x80, 8, source);
                            pci.WriteBar(eduBar, 0x88, 8, destination);
                            pci.WriteBar(eduBar, 0x90, 8, count);
                            pci.WriteBar(eduBar, 0x98, 8, command);
                            WaitIdle(() => (pci.ReadBar(eduBar, 0x98, 8) & 1) == 0, "edu's DMA");
                        });
                        break;
                    }

                case 2:
                    {
                        // A factorial: up to 2^32 multiplications off the loop, as QEMU's edu does — seconds for a large
                        // n, so the harness waits for small ones only (a large one is still started, and cancelled at
                        // the server's stop).
                        bool large = input.Choose(16) == 0;
                        uint value = large ? input.U32() : input.U8();
                        bool wait = !large && !largeFactorial;
                        largeFactorial |= large;
                        guest.Step(() =>
                        {
                            pci.WriteBar(eduBar, 0x08, 4, value);
                            for (int poll = 0; wait && poll < 16 && (pci.ReadBar(eduBar, 0x20, 4) & 1) != 0; poll++)
                            {
                                // Polled as a driver does, bounded: a raw write to 0x08 may have started a long one.
                            }
                        });
                        break;
                    }

                case 3:
                case 4:
                    {
                        // A 16550 register (DLAB or not) at any width: the port BAR is 8 bytes.
                        ulong offset = (ulong)input.Choose((int)Math.Min(serialBar.Size, 16));
                        int size = 1 << input.Choose(3);
                        bool write = input.Bool();
                        uint value = input.U32();
                        guest.Step(() =>
                        {
                            if (write)
                            {
                                pci.WriteBar(serialBar, offset, size, value);
                            }
                            else
                            {
                                pci.ReadBar(serialBar, offset, size);
                            }
                        });
                        break;
                    }

                case 5:
                    {
                        // Host bytes for the guest, arriving between its accesses.
                        int length = input.Choose(64);
                        var bytesIn = new byte[length];
                        for (int b = 0; b < length; b++)
                        {
                            bytesIn[b] = input.U8();
                        }

                        serial!.SendToGuest(bytesIn);
                        break;
                    }

                default:
                    break;
            }
        }

        guest.Finish();
    }

    private static AssignedBar Bar(FuzzGuest guest, int device)
    {
        foreach (EnumeratedFunction function in guest.Functions)
        {
            if (function.Address.Device == device && function.Bars.Count > 0)
            {
                return function.Bars[0];
            }
        }

        throw new InvalidOperationException($"the firmware found no BAR on 00:{device:x2}.0");
    }

    private static void WaitIdle(Func<bool> idle, string what)
    {
        for (int i = 0; i < 10_000; i++)
        {
            if (idle())
            {
                return;
            }
        }

        throw new FuzzFailureException($"{what} did not finish within 10,000 status reads (hang)");
    }
}
