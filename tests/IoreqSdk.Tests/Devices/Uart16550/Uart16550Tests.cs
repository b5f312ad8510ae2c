using System;
using System.Collections.Concurrent;
using System.Linq;
using IoreqSdk.Devices;
using IoreqSdk.Devices.Uart;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Uart;

/// <summary>The bus-independent 16550A: driven directly through its register interface, and behind no PCI at all.</summary>
[TestFixture]
public sealed class Uart16550Tests
{
    [Test]
    public void AnOverrunIsFlaggedInLsrRaisesTheLineStatusInterruptFirstAndClearsOnRead()
    {
        var levels = new ConcurrentQueue<bool>();
        var uart = new Uart16550(_ => { }, levels.Enqueue);
        uart.Write(2, 0x01);
        uart.Write(1, 0x05);
        uart.Receive(Enumerable.Range(0, Uart16550.FifoSize + 2).Select(i => (byte)i).ToArray());

        using (Assert.EnterMultipleScope())
        {
            Assert.That(uart.Overruns, Is.EqualTo(2));
            Assert.That(uart.Read(2), Is.EqualTo(0xC6), "receiver line status outranks data available");
            Assert.That(uart.Read(5) & 0x03, Is.EqualTo(0x03), "data ready and overrun");
            Assert.That(uart.Read(5) & 0x02, Is.Zero, "the error bit clears once read");
            Assert.That(uart.Read(2), Is.EqualTo(0xC4), "now data available");
            Assert.That(uart.Read(0), Is.Zero, "the first byte kept is the first sent");
            Assert.That(levels, Is.EqualTo(new[] { true }), "the line rose once and stays up while data waits");
        }
    }

    [Test]
    public void WithoutFifosTheReceiverHoldsOneByte()
    {
        var uart = new Uart16550(_ => { }, _ => { });
        uart.Receive("ab"u8);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(uart.ReceiveSpace, Is.Zero);
            Assert.That(uart.Overruns, Is.EqualTo(1));
            Assert.That(uart.Read(2), Is.EqualTo(0x01), "no FIFO bits, no interrupt enabled");
            Assert.That(uart.Read(0), Is.EqualTo((byte)'a'));
        }
    }

    // The README's example: the same UART as a legacy COM1 (ports 0x3F8-0x3FF, ISA IRQ 4), a plain DeviceModel.
    [Test]
    public void ServesAsALegacyCom1OnAnX86GuestWithNoBridge()
    {
        var sent = new ConcurrentQueue<byte>();
        var options = new SimulationOptions { Architecture = GuestArchitecture.X86, ResponseTimeout = TimeSpan.FromSeconds(20) };
        using var guest = new SimulatedGuest(options, server => server.AddDevice(new Com1(server.CreateInterruptLine(4), sent.Enqueue)));
        guest.Cpu.Out(0x3F8 + 2, 1, 0x07);
        guest.Cpu.Out(0x3F8 + 1, 1, 0x02);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Xen.Interrupts.IsaIrq(4), Is.True, "enabling THRI with THR empty raises IRQ 4");
            Assert.That(guest.Cpu.In(0x3F8 + 2, 1), Is.EqualTo(0xC2u), "THR empty");
            Assert.That(guest.Xen.Interrupts.IsaIrq(4), Is.False, "reading IIR acknowledged it");
        }

        guest.Cpu.Out(0x3F8 + 1, 1, 0);
        guest.Cpu.Out(0x3F8, 1, (byte)'!');
        Assert.That(sent, Is.EqualTo(new[] { (byte)'!' }));
    }

    private sealed class Com1 : DeviceModel
    {
        private readonly Uart16550 _uart;

        public Com1(InterruptLine irq, Action<byte> transmit)
            : base("com1")
        {
            _uart = new Uart16550(transmit, irq.Set);
            AddPortRegion(8, port: 0x3F8, widths: AccessWidths.Byte);
        }

        public override ulong Read(DeviceRegion region, ulong offset, int size) => _uart.Read((int)offset);

        public override void Write(DeviceRegion region, ulong offset, int size, ulong value) => _uart.Write((int)offset, (byte)value);
    }
}
