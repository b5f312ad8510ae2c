using System;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio.Mmio;

/// <summary>The guest driver's own logic, over a scripted transport: the configuration generation retry loop.</summary>
[TestFixture]
public sealed class GuestVirtioDriverTests
{
    private SimulatedHypervisor? _xen;

    [SetUp]
    public void SetUp() => _xen = new SimulatedHypervisor();

    [TearDown]
    public void TearDown() => _xen?.Dispose();

    [Test]
    public void A_config_read_is_repeated_while_the_generation_moves_under_it()
    {
        var transport = new ScriptedTransport { GenerationChangesFor = 2 };
        GuestVirtioDriver driver = Driver(transport);
        Span<byte> bytes = stackalloc byte[6];
        int attempts = driver.ReadConfig(2, bytes);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(attempts, Is.EqualTo(3), "two reads saw the generation move; the third did not");
            Assert.That(bytes.ToArray(), Is.EqualTo(new byte[] { 2, 3, 4, 5, 6, 7 }));
            Assert.That(transport.Widths, Is.EqualTo("2,4;2,4;2,4;"), "aligned accesses of up to 4 bytes, as virtio_cread does");
        }
    }

    [Test]
    public void A_generation_that_never_settles_is_an_error_not_a_hang()
    {
        var transport = new ScriptedTransport { GenerationChangesFor = int.MaxValue };
        GuestVirtioDriver driver = Driver(transport);
        byte[] bytes = new byte[4];
        Assert.That(() => driver.ReadConfig(0, bytes), Throws.InvalidOperationException.With.Message.Contains("generation"));
    }

    [Test]
    public void A_device_without_VERSION_1_is_refused_and_marked_FAILED()
    {
        var transport = new ScriptedTransport { DeviceFeatures = 1UL << 3 };
        Assert.That(() => Driver(transport).Initialize(), Throws.InvalidOperationException.With.Message.Contains("VERSION_1"));
        Assert.That(transport.Status & (byte)VirtioDeviceStatus.Failed, Is.EqualTo((byte)VirtioDeviceStatus.Failed));
    }

    [Test]
    public void The_driver_gives_up_when_FEATURES_OK_does_not_stick()
    {
        var transport = new ScriptedTransport { DeviceFeatures = VirtioFeatures.Version1 | (1UL << 3), RefuseFeaturesOk = true };
        GuestVirtioDriver driver = Driver(transport);
        Assert.That(() => driver.Initialize(features: 1UL << 3 | 1UL << 5), Throws.InvalidOperationException.With.Message.Contains("FEATURES_OK"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(transport.DriverFeatures, Is.EqualTo(VirtioFeatures.Version1 | (1UL << 3)), "only offered bits are accepted");
            Assert.That(transport.Status & (byte)VirtioDeviceStatus.Failed, Is.EqualTo((byte)VirtioDeviceStatus.Failed));
        }
    }

    private GuestVirtioDriver Driver(ScriptedTransport transport)
    {
        var ram = new SimulatedGuestMemory(_xen!);
        return new GuestVirtioDriver(transport, ram, new GuestRamAllocator(ram, ram.Base, ram.Base + ram.Size));
    }

    /// <summary>Config byte i reads i; the generation moves on each of its first reads pairs for a while.</summary>
    private sealed class ScriptedTransport : GuestVirtioTransport
    {
        private uint _generation;
        private int _generationReads;

        public int GenerationChangesFor { get; set; }

        public string Widths { get; private set; } = string.Empty;

        public override ushort DeviceType => 1;

        public override bool InterruptPending => false;

        public override uint ReadConfigGeneration()
        {
            // Each attempt reads the generation twice; it moves between the two while the script says so.
            _generationReads++;
            if (_generationReads % 2 == 0 && _generationReads / 2 <= GenerationChangesFor)
            {
                _generation++;
                Widths += ";";
            }
            else if (_generationReads % 2 == 0)
            {
                Widths += ";";
            }

            return _generation;
        }

        public override uint ReadConfig(int offset, int size)
        {
            Widths += Widths.Length == 0 || Widths[^1] == ';' ? $"{size}" : $",{size}";
            uint value = 0;
            for (int i = 0; i < size; i++)
            {
                value |= (uint)(byte)(offset + i) << (8 * i);
            }

            return value;
        }

        public ulong DeviceFeatures { get; set; }

        public ulong DriverFeatures { get; private set; }

        public bool RefuseFeaturesOk { get; set; }

        public byte Status { get; private set; }

        public override byte ReadStatus() => Status;

        public override void WriteStatus(byte status) =>
            Status = RefuseFeaturesOk ? (byte)(status & ~(byte)VirtioDeviceStatus.FeaturesOk) : status;

        public override ulong ReadDeviceFeatures() => DeviceFeatures;

        public override void WriteDriverFeatures(ulong features) => DriverFeatures = features;

        public override void WriteConfig(int offset, int size, uint value)
        {
        }

        public override ushort ReadQueueMaxSize(int queue) => 0;

        public override void ConfigureQueue(int queue, ushort size, ulong descriptorArea, ulong driverArea, ulong deviceArea)
        {
        }

        public override void EnableQueue(int queue)
        {
        }

        public override bool IsQueueEnabled(int queue) => false;

        public override void Notify(int queue)
        {
        }

        public override GuestVirtioInterrupts TakeInterrupts() => GuestVirtioInterrupts.None;
    }
}
