using System;
using System.IO;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Devices.Virtio.Console;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Storage;
using IoreqSdk.Virtio;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// Virtqueues as a hostile driver writes them — split and packed descriptor tables, avail and used rings, indirect
/// tables, event indices and suppression flags, raw ring bytes, notifications of any queue, transport registers —
/// against virtio-blk, virtio-rng and virtio-console, each on virtio-mmio and virtio-pci, on x86 and Arm64.
/// </summary>
public static class VirtqueueTarget
{
    /// <summary>The disk image virtio-blk serves (zeroed for each input).</summary>
    public const int ImageSize = 64 * 1024;

    private const int MaxOperations = 64;
    private static readonly TimeSpan s_usedWait = TimeSpan.FromMilliseconds(20);

    /// <summary>Runs one input.</summary>
    /// <param name="bytes">The input.</param>
    public static void Run(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        byte header = input.U8();
        int kind = header % 3;
        VirtioTransportKind transport = (header & 0x04) == 0 ? VirtioTransportKind.Mmio : VirtioTransportKind.Pci;
        GuestArchitecture architecture = (header & 0x08) == 0 ? GuestArchitecture.X86 : GuestArchitecture.Arm64;
        ulong features = ((header & 0x10) != 0 ? VirtioFeatures.RingPacked : 0)
            | ((header & 0x20) != 0 ? VirtioFeatures.IndirectDescriptors : 0)
            | ((header & 0x40) != 0 ? VirtioFeatures.EventIndex : 0);
        ushort queueSize = (ushort)(4 << input.Choose(4));

        string? imagePath = null;
        RawImageFile? image = null;
        IDisposable? owned = null;
        try
        {
            VirtioDevice device;
            switch (kind)
            {
                case 0:
                    imagePath = Path.Combine(Path.GetTempPath(), $"ioreqsdk-fuzz-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}.img");
                    File.WriteAllBytes(imagePath, new byte[ImageSize]);
                    image = RawImageFile.Open(imagePath, readOnly: false);
                    var blk = new VirtioBlkDevice(image, new VirtioBlkOptions { MaxRequestsInFlight = 4 });
                    owned = blk;
                    device = blk;
                    break;
                case 1:
                    device = new VirtioRng(new CountingSource(), maxBytesPerBuffer: 4096, maxBytesPerPass: 16384);
                    break;
                default:
                    var console = new VirtioConsoleDevice(Stream.Null, queueSize: 64);
                    owned = console;
                    device = console;
                    break;
            }

            var options = new SimulationOptions { Architecture = architecture, RamSize = 8 << 20, ResponseTimeout = FuzzGuest.ResponseTimeout };
            using SimulatedVirtioGuest guest = Create(device, transport, architecture, features, queueSize, options);
            var rig = new Rig(guest);
            for (int i = 0; i < MaxOperations && input.HasMore; i++)
            {
                rig.Operate(ref input);
            }

            rig.Finish();
            if (imagePath is not null && new FileInfo(imagePath).Length != ImageSize)
            {
                // A write past the image's end grows the file: the device wrote outside its image.
                throw new FuzzFailureException($"the disk image grew to {new FileInfo(imagePath).Length} bytes (a write outside the device's image)");
            }
        }
        finally
        {
            owned?.Dispose();
            image?.Dispose();
            if (imagePath is not null)
            {
                File.Delete(imagePath);
            }
        }
    }

    private static SimulatedVirtioGuest Create(VirtioDevice device, VirtioTransportKind transport, GuestArchitecture architecture, ulong features, ushort queueSize, SimulationOptions options)
    {
        try
        {
            return SimulatedVirtioGuest.Create(device, transport, architecture, features, queueSize: queueSize, options: options);
        }
        catch (TimeoutException e)
        {
            throw new FuzzFailureException("bring-up left a request unanswered (hang)", e);
        }
    }

    /// <summary>The guest side of one input: its queues, buffers and an indirect table in RAM.</summary>
    private sealed class Rig
    {
        private readonly SimulatedVirtioGuest _guest;
        private readonly ulong _buffers;
        private readonly ulong _table;
        private int _posted;

        public Rig(SimulatedVirtioGuest guest)
        {
            _guest = guest;
            _buffers = guest.Driver.Allocate(0x4000, 4096);
            _table = guest.Driver.Allocate(0x1000, 16);
        }

        public void Operate(ref FuzzInput input)
        {
            GuestVirtioDriver driver = _guest.Driver;
            int queueIndex = driver.Queues.Count == 0 ? 0 : input.Choose(driver.Queues.Count);
            GuestVirtqueue? queue = queueIndex < driver.Queues.Count ? driver.Queues[queueIndex] : null;
            switch (input.Choose(11))
            {
                case 0 when queue is GuestSplitVirtqueue split:
                    {
                        int index = input.U8() % (split.Size + 1);
                        ulong address = Address(ref input);
                        uint length = Length(ref input);
                        ushort flags = (ushort)(input.U8() & 0x7);
                        ushort next = (ushort)(input.U8() % (split.Size + 2));
                        Guest(() => split.WriteDescriptor(Math.Min(index, split.Size - 1), address, length, flags, next));
                        break;
                    }

                case 0 when queue is GuestPackedVirtqueue packed:
                    {
                        int position = input.U8() % packed.Size;
                        ulong address = Address(ref input);
                        uint length = Length(ref input);
                        ushort id = (ushort)(input.U8() % (packed.Size + 2));
                        ushort flags = (ushort)((input.U8() & 0x7) | (input.U8() & 0x3) switch { 0 => 0, 1 => 0x80, 2 => 0x8000, _ => 0x8080 });
                        Guest(() => packed.WriteDescriptor(position, address, length, id, flags));
                        break;
                    }

                case 1 when queue is GuestSplitVirtqueue split:
                    {
                        ushort head = (ushort)(input.U8() % (split.Size + 2));
                        Guest(() => split.PublishHead(head));
                        break;
                    }

                case 2 when queue is GuestSplitVirtqueue split:
                    {
                        ushort value = input.U16();
                        Guest(() => split.SetAvailIndex(value));
                        break;
                    }

                case 3:
                    {
                        // Event suppression: used_event and NO_INTERRUPT (split), the driver event structure (packed).
                        ushort value = input.U16();
                        ushort flags = input.U8();
                        Guest(() =>
                        {
                            if (queue is GuestSplitVirtqueue split)
                            {
                                split.SetUsedEvent(value);
                                split.SuppressInterrupts((flags & 1) != 0);
                            }
                            else if (queue is GuestPackedVirtqueue packed)
                            {
                                packed.SetDriverEvent((ushort)(flags % 4), value);
                            }
                        });
                        break;
                    }

                case 4:
                    {
                        // An indirect table's entry.
                        int entry = input.Choose(64);
                        ulong address = Address(ref input);
                        uint length = Length(ref input);
                        ushort flags = (ushort)(input.U8() & 0x7);
                        ushort next = input.U8();
                        Guest(() => GuestRingBytes.WriteDescriptor(_guest.Memory, _table + (16UL * (uint)entry), address, length, flags, next));
                        break;
                    }

                case 5 when queue is not null:
                    {
                        // Raw bytes anywhere in the queue's three areas (the used ring too: the driver may scribble on it).
                        int area = input.Choose(3);
                        ulong at = area switch { 0 => queue.DescriptorArea, 1 => queue.DriverArea, _ => queue.DeviceArea } + input.U16() % (16UL * queue.Size + 8);
                        uint value = input.U32();
                        Guest(() => GuestRingBytes.TryWrite32(_guest.Memory, at, value));
                        break;
                    }

                case 6:
                    {
                        // A notification of any queue number, existing or not.
                        int notified = input.Choose(4) == 0 ? input.U16() : queueIndex;
                        Step(() => _guest.Transport.Notify(notified));
                        break;
                    }

                case 7 when queue is not null:
                    {
                        // A well-formed request in the middle of the garbage: device-readable header, writable status.
                        ulong head = _buffers + ((ulong)input.Choose(8) * 0x400);
                        uint readable = (uint)input.Choose(3) * 16;
                        uint writable = 1 + (uint)input.U16() % 0x3FF;
                        bool indirect = input.Bool();
                        Step(() =>
                        {
                            GuestBuffer[] buffer = readable == 0
                                ? [new GuestBuffer(head, writable, deviceWritable: true)]
                                : [new GuestBuffer(head, readable, deviceWritable: false), new GuestBuffer(head + 0x200, writable, deviceWritable: true)];
                            if (indirect)
                            {
                                queue.PostIndirect(_table, buffer);
                                driver.Kick(queueIndex);
                            }
                            else
                            {
                                driver.Submit(queueIndex, buffer);
                            }

                            _posted++;
                        });
                        break;
                    }

                case 8:
                    {
                        // The driver's interrupt handler: a bounded wait only for a buffer it posted itself on a queue
                        // the device has not broken (a broken queue completes nothing until the reset).
                        bool wait = _posted > 0 && (_guest.Transport.ReadStatus() & (byte)VirtioDeviceStatus.DeviceNeedsReset) == 0;
                        Step(() =>
                        {
                            if (wait ? driver.WaitForUsed(queueIndex, out _, out _, s_usedWait) : driver.TryTakeUsed(queueIndex, out _, out _))
                            {
                                _posted = Math.Max(0, _posted - 1);
                            }
                        });
                        Step(() => driver.TakeInterrupts());
                        break;
                    }

                case 9:
                    {
                        // Device configuration space: any offset, any width.
                        int offset = input.U8();
                        int size = 1 << input.Choose(3);
                        bool write = input.Bool();
                        uint value = input.U32();
                        Step(() =>
                        {
                            if (write)
                            {
                                _guest.Transport.WriteConfig(offset, size, value);
                            }
                            else
                            {
                                _guest.Transport.ReadConfig(offset, size);
                            }
                        });
                        break;
                    }

                case 10:
                    TransportRegister(ref input);
                    break;

                default:
                    break;
            }
        }

        public void Finish()
        {
            Check();
            long faults = _guest.Server.Statistics.DeviceFaults;
            _guest.Dispose();
            if (faults != 0)
            {
                throw new FuzzFailureException($"{faults} exception(s) escaped device code");
            }

            if (_guest.Xen.OutstandingGuestMappings != 0)
            {
                throw new FuzzFailureException($"{_guest.Xen.OutstandingGuestMappings} guest mapping(s) leaked past the server's stop");
            }
        }

        /// <summary>A transport register at any offset and width: mmio's register block, or a virtio-pci BAR.</summary>
        private void TransportRegister(ref FuzzInput input)
        {
            SimulatedVcpu cpu = _guest.Xen.Vcpu(0);
            int size = 1 << input.Choose(3);
            bool write = input.Bool();
            uint value = input.U32();
            ulong address;
            if (_guest.MmioTransport is not null)
            {
                address = _guest.Xen.Architecture == GuestArchitecture.Arm64 ? IoreqSdk.Virtio.Mmio.VirtioMmioTransport.Arm64WindowBase : 0xFEB0_0000;
                address += input.U16() % 0x200UL;
            }
            else
            {
                var bars = _guest.PciGuest!.Function.Bars;
                AssignedBar bar = bars[input.Choose(bars.Count)];
                if (bar.Kind == Pci.PciBarKind.Io)
                {
                    return;
                }

                address = bar.CpuAddress + (input.U16() % bar.Size);
            }

            Step(() =>
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
        }

        private ulong Address(ref FuzzInput input) => input.Choose(8) switch
        {
            0 => input.U64(),
            1 => _table + input.U16() % 0x1000UL,
            _ => _buffers + input.U16() % 0x4000UL,
        };

        private static uint Length(ref FuzzInput input) => input.Choose(8) == 0 ? input.U32() : input.U16() % 0x1000u;

        private static void Guest(Action write)
        {
            // The guest's own stores into its RAM: a bad address is the harness's choice, never the SDK's fault.
            try
            {
                write();
            }
            catch (ArgumentOutOfRangeException)
            {
            }
        }

        private void Step(Action step)
        {
            try
            {
                step();
            }
            catch (GuestDataAbortException)
            {
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentOutOfRangeException)
            {
                // The simulated driver's own refusals (a queue full of the garbage's descriptors, a reset the device
                // has not finished, a config access past the block): the guest side's checks, not the device's
                // behaviour — device code runs on the server's thread, where the server contains and counts it.
            }
            catch (TimeoutException e)
            {
                throw new FuzzFailureException("a request was left unanswered (hang)", e);
            }
            catch (GuestCrashedException e)
            {
                throw new FuzzFailureException($"the simulated Xen crashed the domain: {e.Message}", e);
            }

            Check();
        }

        private void Check()
        {
            if (_guest.Xen.CrashReason is string reason)
            {
                throw new FuzzFailureException($"the simulated Xen crashed the domain: {reason}");
            }
        }
    }

    private sealed class CountingSource : IRandomSource
    {
        private byte _next;

        public void Fill(Span<byte> destination)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                destination[i] = _next++;
            }
        }
    }
}
