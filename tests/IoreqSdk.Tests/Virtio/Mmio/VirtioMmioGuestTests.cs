using System;
using System.Threading;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Mmio;
using NUnit.Framework;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Tests.Virtio.Mmio;

/// <summary>virtio-mmio on simulated x86 and Arm64 guests: the guest driver's probe and bring-up, real vCPU accesses, the line.</summary>
[TestFixture(GuestArchitecture.X86)]
[TestFixture(GuestArchitecture.Arm64)]
public sealed class VirtioMmioGuestTests
{
    private readonly GuestArchitecture _architecture;

    public VirtioMmioGuestTests(GuestArchitecture architecture) => _architecture = architecture;

    [Test]
    public void The_probe_reads_magic_version_and_device_and_the_driver_brings_the_device_up()
    {
        using var guest = SimulatedVirtioGuest.Create(new EchoDevice(VirtioFeatures.EventIndex), VirtioTransportKind.Mmio, _architecture, features: VirtioFeatures.EventIndex);
        var mmio = (GuestVirtioMmio)guest.Transport;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(mmio.Version, Is.EqualTo(2u));
            Assert.That(mmio.DeviceType, Is.EqualTo(EchoDevice.TypeId));
            Assert.That(mmio.VendorId, Is.EqualTo(VirtioMmioTransport.DefaultVendorId));
            Assert.That(guest.Device.Status, Is.EqualTo(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk | VirtioDeviceStatus.DriverOk));
            Assert.That(guest.Driver.Features, Is.EqualTo(VirtioFeatures.Version1 | VirtioFeatures.EventIndex));
            Assert.That(guest.Queues, Has.Count.EqualTo(2));
            Assert.That(guest.Device.GetQueue(1).IsEnabled, Is.True);
            Assert.That(guest.Xen.CrashReason, Is.Null);
        }
    }

    [TestCase(0ul)]
    [TestCase(VirtioFeatures.RingPacked)]
    [TestCase(VirtioFeatures.RingPacked | VirtioFeatures.EventIndex)]
    public void A_buffer_comes_back_with_a_used_buffer_interrupt_on_the_platform_line(ulong features)
    {
        using var guest = SimulatedVirtioGuest.Create(new EchoDevice(features), VirtioTransportKind.Mmio, _architecture, features: features);
        ulong input = guest.Driver.Allocate(8);
        ulong output = guest.Driver.Allocate(8);
        BitConverter.TryWriteBytes(guest.Memory.Span(input, 8), 0x1122_3344_5566_7788UL);
        ushort id = guest.Driver.Submit(0, new GuestBuffer[] { new(input, 8, false), new(output, 8, true) });
        GuestVirtioInterrupts causes = guest.Driver.WaitForInterrupt();
        bool used = guest.Driver.TryTakeUsed(0, out ushort usedId, out uint length);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(causes, Is.EqualTo(GuestVirtioInterrupts.UsedBuffers));
            Assert.That(used, Is.True);
            Assert.That(usedId, Is.EqualTo(id));
            Assert.That(length, Is.EqualTo(8u));
            Assert.That(BitConverter.ToUInt64(guest.Memory.Span(output, 8)), Is.EqualTo(0x1122_3344_5566_7788UL));
            Assert.That(guest.MmioTransport!.InterruptStatus, Is.Zero, "acknowledged");
            Assert.That(guest.MmioTransport.Interrupt.IsAsserted, Is.False);
            Assert.That(guest.Transport.InterruptPending, Is.False);
        }

        if (_architecture == GuestArchitecture.Arm64)
        {
            Assert.That(guest.Xen.Interrupts.SpiInjections(VirtioMmioTransport.Arm64Spi(0)), Is.EqualTo(1));
        }
    }

    [Test]
    public void The_doorbell_write_completes_before_the_device_sees_the_queue()
    {
        var device = new GatedDevice();
        using var guest = SimulatedVirtioGuest.Create(device, VirtioTransportKind.Mmio, _architecture);

        // The device waits in its queue processing until the vCPU's write has returned. Processed inside the write,
        // it would wait for a release that cannot come (the vCPU is blocked on it) and time out.
        guest.Transport.Notify(0);
        device.WriteReturned.Set();
        Assert.That(SimulatedVirtioGuest.WaitUntil(() => device.Processed), Is.True);
        Assert.That(device.SawWriteReturned, Is.True);
    }

    [Test]
    public void Eight_byte_accesses_are_refused_by_the_width_check_and_the_block_keeps_working()
    {
        using var guest = SimulatedVirtioGuest.Create(new EchoDevice(0), VirtioTransportKind.Mmio, _architecture);
        var mmio = (GuestVirtioMmio)guest.Transport;
        long before = guest.Server.Statistics.RefusedWidthAccesses;
        uint wide = (uint)guest.Xen.Vcpu(0).ReadMmio(mmio.Address + R.Config, 8);
        guest.Xen.Vcpu(0).WriteMmio(mmio.Address + R.Status, 8, 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(wide, Is.EqualTo(uint.MaxValue));
            Assert.That(guest.Server.Statistics.RefusedWidthAccesses - before, Is.EqualTo(2L));
            Assert.That(guest.Device.Status & VirtioDeviceStatus.DriverOk, Is.EqualTo(VirtioDeviceStatus.DriverOk), "the 8-byte write of 0 was no reset");
            Assert.That(mmio.ReadRegister(R.MagicValue), Is.EqualTo(R.MagicValueExpected));
        }
    }

    [Test]
    public void A_narrow_access_to_a_control_register_reads_all_ones_and_is_counted()
    {
        using var guest = SimulatedVirtioGuest.Create(new EchoDevice(0), VirtioTransportKind.Mmio, _architecture);
        var mmio = (GuestVirtioMmio)guest.Transport;
        uint narrow = mmio.ReadRegister(R.MagicValue, 1);
        mmio.WriteRegister(R.Status, 0, 2);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(narrow, Is.EqualTo(0xFFu));
            Assert.That(guest.MmioTransport!.RefusedAccesses, Is.EqualTo(2));
            Assert.That(guest.Device.Status & VirtioDeviceStatus.DriverOk, Is.EqualTo(VirtioDeviceStatus.DriverOk));
        }
    }

    [Test]
    public void Config_reads_go_through_the_generation_and_a_reset_returns_everything()
    {
        using var guest = SimulatedVirtioGuest.Create(new EchoDevice(0), VirtioTransportKind.Mmio, _architecture);
        Span<byte> config = stackalloc byte[8];
        int attempts = guest.Driver.ReadConfig(0, config);
        byte first = config[0];
        guest.Driver.Reset();
        var mmio = (GuestVirtioMmio)guest.Transport;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(attempts, Is.EqualTo(1));
            Assert.That(first, Is.EqualTo(0xA5));
            Assert.That(mmio.ReadStatus(), Is.Zero);
            Assert.That(mmio.IsQueueEnabled(0) || mmio.IsQueueEnabled(1), Is.False);
            Assert.That(guest.Device.GetQueue(0).DescriptorArea, Is.Zero);
            Assert.That(mmio.ReadRegister(R.InterruptStatus), Is.Zero);
        }

        // And it comes up again.
        guest.Driver.Initialize(queueCount: 2);
        Assert.That(guest.Device.Status & VirtioDeviceStatus.DriverOk, Is.EqualTo(VirtioDeviceStatus.DriverOk));
    }

    [Test]
    public void The_device_goes_where_the_options_place_it_and_interrupts_on_their_line()
    {
        uint line = _architecture == GuestArchitecture.Arm64 ? 40u : 7u;
        var options = new SimulationOptions { Architecture = _architecture, VirtioMmioBase = 0x0300_0000, VirtioMmioLine = line };
        using var guest = SimulatedVirtioGuest.Create(new EchoDevice(0), VirtioTransportKind.Mmio, _architecture, options: options);
        ulong output = guest.Driver.Allocate(4);
        guest.Driver.Submit(0, new GuestBuffer[] { new(guest.Driver.Allocate(4), 4, false), new(output, 4, true) });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(((GuestVirtioMmio)guest.Transport).Address, Is.EqualTo(0x0300_0000UL));
            Assert.That(guest.MmioTransport!.Address, Is.EqualTo(0x0300_0000UL));
            Assert.That(guest.Driver.WaitForInterrupt(), Is.EqualTo(GuestVirtioInterrupts.UsedBuffers));
            Assert.That(guest.MmioTransport.Interrupt.Description, Does.Contain(line.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    [Test]
    public void The_harness_refuses_a_transport_it_does_not_know_and_a_device_virtio_pci_cannot_carry()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => SimulatedVirtioGuest.Create(new EchoDevice(0), (VirtioTransportKind)7, _architecture), Throws.TypeOf<NotSupportedException>());

            // The echo device's type (0x7F) is past virtio-pci's device ids (0x1040 + 0 to 63).
            Assert.That(() => SimulatedVirtioGuest.Create(new EchoDevice(0), VirtioTransportKind.Pci, _architecture), Throws.TypeOf<ArgumentOutOfRangeException>());
        }
    }

    [Test]
    public void No_device_at_an_address_fails_the_probe()
    {
        using var guest = SimulatedVirtioGuest.Create(new EchoDevice(0), VirtioTransportKind.Mmio, _architecture, initialize: false);
        ulong elsewhere = ((GuestVirtioMmio)guest.Transport).Address + 0x1000;
        if (_architecture == GuestArchitecture.Arm64)
        {
            // Xen on Arm turns an access nothing claims into a data abort for the guest.
            Assert.That(() => new GuestVirtioMmio(guest.Xen, elsewhere, 33), Throws.TypeOf<GuestDataAbortException>());
        }
        else
        {
            Assert.That(() => new GuestVirtioMmio(guest.Xen, elsewhere, 5), Throws.InvalidOperationException.With.Message.Contains("magic"));
        }
    }

    /// <summary>A device whose queue processing waits (bounded) for the test to say the vCPU's write returned.</summary>
    private sealed class GatedDevice : VirtioDevice
    {
        private volatile bool _processed;
        private volatile bool _sawWriteReturned;

        public GatedDevice()
            : base(0x7E, 0, new ushort[] { 8 }, configSize: 0)
        {
        }

        public ManualResetEventSlim WriteReturned { get; } = new();

        public bool Processed => _processed;

        public bool SawWriteReturned => _sawWriteReturned;

        protected override void OnQueueNotified(VirtioQueue queue)
        {
            _sawWriteReturned = WriteReturned.Wait(TimeSpan.FromSeconds(3));
            _processed = true;
        }
    }
}
