using System;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// The ioreq path: what Xen (driven by a guest) or a corrupt peer can put in the shared ioreq page and the buffered
/// ring — every field of a slot, any state, ring entries and pointers — against a server with devices mapped.
/// </summary>
/// <remarks>
/// Input: a header byte (architecture, vCPUs, ring mode), then operations until the input ends. A device author fuzzes
/// their own device by passing it in <c>addDevices</c> (see docs/fuzzing.md).
/// </remarks>
public static class IoreqPathTarget
{
    private const int MaxOperations = 64;

    /// <summary>Runs one input.</summary>
    /// <param name="bytes">The input.</param>
    /// <param name="addDevices">The devices to serve; the SDK's sample devices unless given.</param>
    /// <param name="bringUpKey">A name for the device set <paramref name="addDevices"/> builds, to enumerate it once per process (see <see cref="FuzzGuest"/>).</param>
    public static void Run(ReadOnlySpan<byte> bytes, Action<FuzzGuestSetup>? addDevices = null, string? bringUpKey = null)
    {
        var input = new FuzzInput(bytes);
        byte header = input.U8();
        GuestArchitecture architecture = (header & 1) == 0 ? GuestArchitecture.X86 : GuestArchitecture.Arm64;
        int vcpus = 1 + ((header >> 1) & 1);
        var mode = (BufferedIoreqMode)((header >> 2) % 3);
        using var guest = new FuzzGuest(architecture, vcpus, mode, addDevices, bringUpKey);
        for (int i = 0; i < MaxOperations && input.HasMore; i++)
        {
            Operate(guest, ref input);
        }

        guest.Finish();
    }

    private static void Operate(FuzzGuest guest, ref FuzzInput input)
    {
        SimulatedHypervisor xen = guest.Xen;
        bool x86 = xen.Architecture == GuestArchitecture.X86;
        SimulatedVcpu cpu = xen.Vcpu(input.Choose(2) % guest.VcpuCount);
        switch (input.Choose(8))
        {
            case 0:
            case 1:
                {
                    // A request exactly as the slot would hold it: any type, address, width, count, flags and data.
                    IoRequest request = RawRequest(guest, ref input);
                    guest.Step(() => cpu.SendRaw(guest.Server.Id, request));
                    break;
                }

            case 2:
                {
                    // A guest load or store, routed by the simulated Xen as a real one would be.
                    ulong address = guest.PickAddress(ref input, RegionKind.Mmio);
                    int size = (int)input.Width();
                    bool write = input.Bool();
                    ulong value = input.U64();
                    guest.Step(() =>
                    {
                        if (write)
                        {
                            cpu.WriteMmio(address, size, value);
                        }
                        else
                        {
                            cpu.ReadMmio(address, size);
                        }
                    });
                    break;
                }

            case 3 when x86:
                {
                    ushort port = (ushort)guest.PickAddress(ref input, RegionKind.Port);
                    int size = 1 << input.Choose(3);
                    bool write = input.Bool();
                    uint value = input.U32();
                    guest.Step(() =>
                    {
                        if (write)
                        {
                            cpu.Out(port, size, value);
                        }
                        else
                        {
                            cpu.In(port, size);
                        }
                    });
                    break;
                }

            case 4 when x86 && guest.Xen.HasRing(guest.Server.Id):
                RingEntries(guest, ref input);
                break;

            case 5:
                {
                    // The physmap changes (ballooning) and Xen broadcasts INVALIDATE: no mapping may survive it.
                    ulong frame = (xen.RamBase >> 12) + (ulong)input.Choose(64);
                    guest.Step(() => cpu.RemoveFrameAndInvalidate(frame));
                    if (xen.OutstandingGuestMappings != 0)
                    {
                        throw new FuzzFailureException($"{xen.OutstandingGuestMappings} guest mapping(s) survived INVALIDATE");
                    }

                    break;
                }

            case 6:
                SpuriousSlot(guest, ref input);
                break;

            case 7 when x86:
                {
                    long delta = (long)input.U64();
                    guest.Step(() => xen.ChangeRtcOffset(delta));
                    break;
                }

            default:
                break;
        }
    }

    private static IoRequest RawRequest(FuzzGuest guest, ref FuzzInput input)
    {
        byte kind = input.U8();
        var type = (kind % 6) switch
        {
            0 => IoreqType.Pio,
            1 => IoreqType.Copy,
            2 => IoreqType.PciConfig,
            3 => IoreqType.TimeOffset,
            4 => IoreqType.Invalidate,
            _ => (IoreqType)input.U8(),
        };
        ulong address = type == IoreqType.PciConfig
            ? ((ulong)input.U16() << 32) | input.U16()
            : guest.PickAddress(ref input, type == IoreqType.Pio ? RegionKind.Port : RegionKind.Mmio);
        byte flags = input.U8();
        bool pointer = (flags & 1) != 0;
        uint count = (flags & 6) switch
        {
            0 => 1,
            2 => input.U8(),
            4 => input.U16(),
            _ => input.U32(),
        };
        return new IoRequest
        {
            Type = type,
            Address = address,
            Size = input.Width(legalOnly: false),
            Count = count,
            Direction = (flags & 8) != 0 ? IoreqDirection.Read : IoreqDirection.Write,
            DirectionFlag = (flags & 16) != 0,
            DataIsPointer = pointer,
            Data = pointer ? guest.PickRamAddress(ref input) : input.U64(),
        };
    }

    /// <summary>Raw entries in the buffered ring and a write pointer anywhere (a corrupt or hostile producer).</summary>
    private static void RingEntries(FuzzGuest guest, ref FuzzInput input)
    {
        int entries = input.Choose(8);
        uint advanceExtra = input.Choose(4) == 3 ? input.U32() : 0;

        // An empty ring moved anywhere first (a long-running ring's pointers near the 32-bit wrap, or where a corrupt
        // producer left them) one time in four.
        uint? rebase = input.Choose(4) == 0 ? input.U32() : null;
        uint[] headers = new uint[entries];
        uint[] data = new uint[entries];
        for (int i = 0; i < entries; i++)
        {
            headers[i] = input.U32();
            data[i] = input.U32();
        }

        guest.Step(() =>
        {
            if (rebase is uint at)
            {
                guest.Xen.MoveEmptyRing(guest.Server.Id, at);
            }

            guest.Xen.WriteRingEntries(guest.Server.Id, headers, data, advanceExtra);

            // A synchronous request after the ring: the server drains the ring before serving it, so its answer means
            // the entries were consumed (or skipped).
            guest.Xen.Vcpu(0).SendRaw(guest.Server.Id, new IoRequest { Type = IoreqType.Pio, Address = 0x80, Size = 1, Count = 1, Direction = IoreqDirection.Read });
        });
    }

    /// <summary>A slot rewritten with a state other than READY and an event: the server must take it as spurious.</summary>
    private static void SpuriousSlot(FuzzGuest guest, ref FuzzInput input)
    {
        byte state = input.U8();
        if ((state & 0xF) == (byte)IoreqState.Ready)
        {
            state++;
        }

        ulong address = input.U64();
        long before = guest.Server.Statistics.SpuriousEvents;
        guest.Xen.NotifyWithSlotState(guest.Server.Id, 0, (IoreqState)(state & 0xF), address);
        if (!SpinUntil(() => guest.Server.Statistics.SpuriousEvents > before))
        {
            throw new FuzzFailureException("an event for a slot not READY was not taken as spurious (hang)");
        }

        guest.Xen.NotifyWithSlotState(guest.Server.Id, 0, IoreqState.None, 0, notify: false);
        guest.Check();
    }

    private static bool SpinUntil(Func<bool> condition)
    {
        long deadline = Environment.TickCount64 + (long)FuzzGuest.ResponseTimeout.TotalMilliseconds;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
            {
                return false;
            }

            Thread.Yield();
        }

        return true;
    }
}
