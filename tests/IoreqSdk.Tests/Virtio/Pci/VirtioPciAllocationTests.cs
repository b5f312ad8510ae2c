using System;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Memory;
using IoreqSdk.Pci;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Infrastructure;
using IoreqSdk.Virtio.Pci;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>
/// The transport's request paths allocate nothing: config reads (hooked capabilities included), common-config
/// accesses, and a doorbell with its posted flush and the echo it runs. Driven on the test thread, the transport
/// attached to a context that runs posted work when the test says.
/// </summary>
[TestFixture]
[Category("Allocation")]
public sealed class VirtioPciAllocationTests
{
    private const ulong Desc = VirtioRig.DescriptorArea;
    private const ulong Avail = VirtioRig.DriverArea;
    private const ulong Used = VirtioRig.DeviceArea;
    private const ulong In = VirtioRig.Buffers;
    private const ulong Out = VirtioRig.Buffers + 0x1000;

    [Test]
    public void Config_reads_common_config_and_doorbells_allocate_nothing()
    {
        var ram = new TestGuestRam(VirtioRig.RamBase, 1 << 20);
        var transport = new VirtioPciTransport(new PciEchoDevice());
        var context = new OneSlotContext(ram);
        transport.Attach(context);
        transport.WriteConfig(PciConfigRegisters.Command, 2, PciConfigRegisters.CommandMemory | PciConfigRegisters.CommandBusMaster);
        DeviceRegion bar = transport.Bars[0]!.Region;
        void Write(ulong offset, int size, ulong value) => transport.Write(bar, offset, size, value);

        // The driver's bring-up, straight into the BAR.
        Write(0x14, 1, 1);
        Write(0x14, 1, 3);
        Write(0x08, 4, 1);
        Write(0x0C, 4, 1);
        Write(0x14, 1, 11);
        Write(0x16, 2, 0);
        Write(0x18, 2, 16);
        Write(0x20, 8, Desc);
        Write(0x28, 8, Avail);
        Write(0x30, 8, Used);
        Write(0x1C, 2, 1);
        Write(0x14, 1, 15);

        // The PCI_CFG window aimed at num_queues.
        int window = FindWindow(transport);
        transport.WriteConfig(window + 4, 1, 0);
        transport.WriteConfig(window + 8, 4, 0x12);
        transport.WriteConfig(window + 12, 4, 2);

        var driver = new GuestSplitVirtqueue(ram, 16, Desc, Avail, Used, eventIndex: false);
        GuestBuffer[] buffer = { new(In, 16, false), new(Out, 16, true) };
        int Rounds(int count)
        {
            int done = 0;
            for (int i = 0; i < count; i++)
            {
                ram.SetU32(In, (uint)i);
                ushort id = driver.Post(buffer);
                if (driver.KickPrepare())
                {
                    Write(0x3000, 2, 0);
                    context.RunPosted();
                }

                uint queues = transport.ReadConfig(window + 16, 2);
                ulong status = transport.Read(bar, 0x14, 1);
                ulong size = transport.Read(bar, 0x18, 2);
                if (driver.TryTakeUsed(out ushort used, out uint length) && used == id && length == 16 && ram.U32(Out) == (uint)i
                    && queues == 2 && status == 15 && size == 16)
                {
                    done++;
                }
            }

            return done;
        }

        SteadyStateAllocations.AssertNone(Rounds, 10_000, "round");
    }

    private static int FindWindow(VirtioPciTransport transport)
    {
        int at = (int)transport.ReadConfig(PciConfigRegisters.CapabilitiesPointer, 1);
        while (at != 0)
        {
            if (transport.ReadConfig(at, 1) == PciConfigRegisters.CapabilityVendor && transport.ReadConfig(at + 3, 1) == 5)
            {
                return at;
            }

            at = (int)transport.ReadConfig(at + 1, 1);
        }

        throw new InvalidOperationException("No PCI_CFG capability.");
    }

    /// <summary>Guest RAM, and one posted work item held until <see cref="RunPosted"/> (the transport posts at most one).</summary>
    private sealed class OneSlotContext : IDeviceContext
    {
        private Action? _posted;

        public OneSlotContext(IGuestMemory memory) => Memory = memory;

        public long RunNumber => 1;

        public IGuestMemory Memory { get; }

        public long Posts { get; private set; }

        public void MapRegion(DeviceRegion region, ulong address)
        {
        }

        public void UnmapRegion(DeviceRegion region)
        {
        }

        public void Post(Action work) => throw new NotSupportedException();

        public bool TryPost(Action work)
        {
            if (_posted is not null)
            {
                throw new InvalidOperationException("The transport posted twice before its flush ran.");
            }

            _posted = work;
            Posts++;
            return true;
        }

        public bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion) => false;

        public bool TryRunOffLoop(OffLoopWork work) => false;

        public IOffLoopWorker CreateOffLoopWorker(string name, int threadCount, int capacity) => throw new NotSupportedException();

        public void RunPosted()
        {
            Action? work = _posted;
            _posted = null;
            work?.Invoke();
        }
    }
}
