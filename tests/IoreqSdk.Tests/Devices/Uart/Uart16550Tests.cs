using System.Collections.Concurrent;
using System.Linq;
using IoreqSdk.Devices.Uart;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Uart;

/// <summary>The bus-independent 16550A, driven directly through its register interface (no bus, no guest).</summary>
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
}
