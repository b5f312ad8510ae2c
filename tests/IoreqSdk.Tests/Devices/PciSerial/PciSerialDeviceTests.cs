using System.Collections.Concurrent;
using System.Linq;
using System.Text;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.PciSerial;

/// <summary>
/// The PCI 16550A, driven through its registers as Linux's 8250 driver uses them, on both platforms (on Arm64
/// its I/O BAR is reached through the host bridge's PIO aperture).
/// </summary>
[TestFixture]
public sealed class PciSerialDeviceTests
{
    private const ulong Rbr = 0, Thr = 0, Ier = 1, Iir = 2, Fcr = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;

    [Test]
    public void PresentsItselfAsQemusPciSerial([Values] GuestArchitecture architecture)
    {
        using var guest = new DeviceOnGuest(architecture, new PciSerialDevice(_ => { }));
        var function = guest.Guest.Function(DeviceOnGuest.Slot);

        using (Assert.EnterMultipleScope())
        {
            Assert.That((function.VendorId, function.DeviceId, function.ClassCode), Is.EqualTo(((ushort)0x1b36, (ushort)0x0002, 0x070002u)));
            Assert.That(function.Bars.Select(b => (b.Index, b.Kind, b.Size)), Is.EqualTo(new[] { (0, PciBarKind.Io, 8UL) }));
            Assert.That(guest.Guest.Config(DeviceOnGuest.Slot, PciConfigRegisters.InterruptPin, 1), Is.EqualTo(1), "INTA");
            Assert.That(guest.IsArm ? guest.Bar0.CpuAddress != guest.Bar0.BusAddress : guest.Bar0.CpuAddress == guest.Bar0.BusAddress, Is.True,
                "port I/O on x86; an MMIO address in the PIO aperture on Arm64");
        }
    }

    [Test]
    public void PassesThe8250ProbeAsA16550A([Values] GuestArchitecture architecture)
    {
        using var guest = new DeviceOnGuest(architecture, new PciSerialDevice(_ => { }));
        guest.Write(Scr, 1, 0xA5);
        guest.Write(Ier, 1, 0xFF);
        byte ier = (byte)guest.Read(Ier, 1);
        guest.Write(Mcr, 1, 0x1A);
        byte loop = (byte)(guest.Read(Msr, 1) & 0xF0);
        guest.Write(Mcr, 1, 0x10 | 0x05);
        byte loop2 = (byte)(guest.Read(Msr, 1) & 0xF0);
        guest.Write(Mcr, 1, 0);
        guest.Write(Ier, 1, 0);
        guest.Write(Fcr, 1, 0x01);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Read(Scr, 1), Is.EqualTo(0xA5UL), "scratch");
            Assert.That(ier, Is.EqualTo(0x0F), "IER keeps only its four enable bits");
            Assert.That(loop, Is.EqualTo(0x90), "loopback: RTS -> CTS, OUT2 -> DCD");
            Assert.That(loop2, Is.EqualTo(0x60), "loopback: DTR -> DSR, OUT1 -> RI");
            Assert.That(guest.Read(Iir, 1), Is.EqualTo(0xC1UL), "FIFOs enabled, no interrupt pending: a 16550A");
            Assert.That(guest.Read(Lsr, 1), Is.EqualTo(0x60UL), "transmitter empty and idle, nothing received");
        }
    }

    [Test]
    public void TheDivisorLatchOverlaysTheDataAndInterruptEnableRegisters([Values] GuestArchitecture architecture)
    {
        var serial = new PciSerialDevice(_ => { });
        using var guest = new DeviceOnGuest(architecture, serial);
        guest.Write(Ier, 1, 0x01);
        guest.Write(Lcr, 1, 0x83);
        guest.Write(0, 1, 0x30);
        guest.Write(1, 1, 0x00);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Read(0, 1), Is.EqualTo(0x30UL));
            Assert.That(guest.Read(1, 1), Is.Zero, "DLM, not IER");
            Assert.That(serial.Uart.Divisor, Is.EqualTo(0x30), "2400 baud");
        }

        guest.Write(Lcr, 1, 0x03);
        Assert.That(guest.Read(Ier, 1), Is.EqualTo(0x01UL), "IER survived the divisor writes");
        Assert.That(serial.BytesTransmitted, Is.Zero, "writing DLL sent nothing");
    }

    [Test]
    public void ThreInterruptArmsOnEnableClearsOnIirReadAndReturnsAfterEachWrite([Values] GuestArchitecture architecture)
    {
        var sent = new ConcurrentQueue<byte>();
        using var guest = new DeviceOnGuest(architecture, new PciSerialDevice(sent.Enqueue));
        guest.Write(Fcr, 1, 0x07);
        guest.Write(Mcr, 1, 0x0B);
        guest.Write(Ier, 1, 0x02);

        Assert.That(guest.IntxObservations, Is.EqualTo(1), "enabling THRI with THR empty interrupts at once");
        Assert.That(guest.Read(Iir, 1), Is.EqualTo(0xC2UL), "THR empty");
        Assert.That(guest.Read(Iir, 1), Is.EqualTo(0xC1UL), "reading IIR acknowledged it");
        if (!guest.IsArm)
        {
            Assert.That(guest.IntxObservations, Is.Zero, "the level dropped");
        }

        guest.Write(Thr, 1, (byte)'A');
        Assert.That(guest.Read(Iir, 1), Is.EqualTo(0xC2UL), "the byte left; THR empty again");
        Assert.That(guest.IsArm ? guest.Xen.Interrupts.SpiInjections(guest.Spi) : guest.IntxObservations, Is.EqualTo(guest.IsArm ? 2 : 0),
            "Arm64: a second assertion was injected; x86: IIR read lowered the level again");
        Assert.That(sent, Is.EqualTo(new[] { (byte)'A' }));
    }

    [Test]
    public void InterruptDrivenTransmitDeliversEveryByteInOrder([Values] GuestArchitecture architecture)
    {
        var sent = new ConcurrentQueue<byte>();
        var serial = new PciSerialDevice(sent.Enqueue);
        using var guest = new DeviceOnGuest(architecture, serial);
        byte[] message = Encoding.ASCII.GetBytes("The quick brown fox jumps over the lazy dog, twice over: the quick brown fox.");
        guest.Write(Fcr, 1, 0x07);
        guest.Write(Ier, 1, 0x02);
        int at = 0;
        int interrupts = 0;
        while (at < message.Length && interrupts < 100)
        {
            Assert.That(guest.Read(Iir, 1) & 0x0F, Is.EqualTo(0x02UL), "each round starts with a THRE interrupt");
            interrupts++;
            for (int n = 0; n < 16 && at < message.Length; n++)
            {
                guest.Write(Thr, 1, message[at++]);
            }
        }

        guest.Write(Ier, 1, 0);
        Assert.That(sent.ToArray(), Is.EqualTo(message));
        Assert.That(interrupts, Is.EqualTo((message.Length + 15) / 16), "one interrupt per FIFO load");
        Assert.That(serial.BytesTransmitted, Is.EqualTo(message.Length));
    }

    [Test]
    public void HostInputLongerThanTheFifoArrivesWholeWithoutOverrun([Values] GuestArchitecture architecture)
    {
        var serial = new PciSerialDevice(_ => { });
        using var guest = new DeviceOnGuest(architecture, serial);
        guest.Write(Fcr, 1, 0x87);
        guest.Write(Ier, 1, 0x01);
        string text = string.Concat(Enumerable.Repeat("0123456789abcdef", 5)) + "!";
        serial.SendToGuest(Encoding.ASCII.GetBytes(text));

        Assert.That(Wait.Until(() => guest.IntxObservations >= 1), Is.True, "receive interrupt");
        Assert.That(guest.Read(Iir, 1), Is.EqualTo(0xC4UL), "data available: a full FIFO is past the trigger level of 8");
        string received = ReadWhileDataReady(guest);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(received, Is.EqualTo(text));
            Assert.That(serial.Uart.Overruns, Is.Zero, "the device paced the host's bytes to the FIFO's room");
            Assert.That(serial.BytesReceived, Is.EqualTo(text.Length));
            Assert.That(guest.Read(Iir, 1), Is.EqualTo(0xC1UL));
        }
    }

    [Test]
    public void AGuestThatDoesNotReadHoldsTheHostOffInsteadOfGrowingItsQueue([Values] GuestArchitecture architecture)
    {
        var serial = new PciSerialDevice(_ => { });
        using var guest = new DeviceOnGuest(architecture, serial);
        guest.Write(Fcr, 1, 0x01);
        byte[] flood = new byte[16 << 20];

        int first = serial.SendToGuest(flood);
        Assert.That(Wait.Until(() => (guest.Read(Lsr, 1) & 1) != 0), Is.True, "the FIFO filled");
        int second = serial.SendToGuest(flood);
        int third = serial.SendToGuest(flood);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first, Is.EqualTo(PciSerialDevice.HostQueueCapacity), "the first send fills the bounded queue, no more");
            Assert.That(second, Is.EqualTo(16), "then only what the guest's FIFO took made room");
            Assert.That(third, Is.Zero, "a guest that does not read takes nothing more");
            Assert.That(serial.BytesWaiting, Is.EqualTo(PciSerialDevice.HostQueueCapacity));
            Assert.That(serial.Uart.Overruns, Is.Zero);
        }
    }

    [Test]
    public void ABlockingSendEndsWhenCancelledAndCompletesWhileTheGuestReads([Values] GuestArchitecture architecture)
    {
        var serial = new PciSerialDevice(_ => { });
        using var guest = new DeviceOnGuest(architecture, serial);
        guest.Write(Fcr, 1, 0x01);
        byte[] text = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("0123456789abcdef", (PciSerialDevice.HostQueueCapacity / 16) + 8)));

        // Cancelled while the guest does not read: the sender gets back what was taken, and is not stuck.
        using (var cancel = new System.Threading.CancellationTokenSource())
        {
            int taken = -1;
            var sender = new System.Threading.Thread(() => taken = serial.SendToGuest(text, cancel.Token));
            sender.Start();
            Assert.That(Wait.Until(() => serial.BytesWaiting == PciSerialDevice.HostQueueCapacity), Is.True);
            cancel.Cancel();
            Assert.That(sender.Join(System.TimeSpan.FromSeconds(10)), Is.True, "cancellation ends the wait");
            Assert.That(taken, Is.InRange(PciSerialDevice.HostQueueCapacity, text.Length - 1));
        }

        // Drain what the cancelled send left; then a guest that reads lets a blocked sender finish, every byte in order.
        int polls = 0;
        while ((serial.BytesWaiting > 0 || (guest.Read(Lsr, 1) & 1) != 0) && polls++ < 10_000_000)
        {
            _ = guest.Read(Rbr, 1);
        }

        byte[] more = Enumerable.Range(0, (3 * PciSerialDevice.HostQueueCapacity) + 7).Select(i => (byte)(i % 251)).ToArray();
        int sent = -1;
        var blocked = new System.Threading.Thread(() => sent = serial.SendToGuest(more, System.Threading.CancellationToken.None));
        blocked.Start();
        var received = new System.Collections.Generic.List<byte>();
        polls = 0;
        while (received.Count < more.Length && polls++ < 10_000_000)
        {
            if ((guest.Read(Lsr, 1) & 1) != 0)
            {
                received.Add((byte)guest.Read(Rbr, 1));
            }
        }

        Assert.That(blocked.Join(System.TimeSpan.FromSeconds(10)), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sent, Is.EqualTo(more.Length));
            Assert.That(received, Is.EqualTo(more));
            Assert.That(serial.Uart.Overruns, Is.Zero);
        }
    }

    [Test]
    public void BytesWaitingWhenTheDriverResetsTheFifoAreDeliveredAfterwards([Values] GuestArchitecture architecture)
    {
        // Input that arrives before the driver opens the port: its start-up clears the FIFOs, which must not strand
        // the bytes still queued behind them.
        var serial = new PciSerialDevice(_ => { });
        using var guest = new DeviceOnGuest(architecture, serial);
        guest.Write(Fcr, 1, 0x01);
        serial.SendToGuest(Encoding.ASCII.GetBytes("abcdefghijklmnopqrstuvwxyz"));
        Assert.That(Wait.Until(() => (guest.Read(Lsr, 1) & 1) != 0), Is.True);

        guest.Write(Fcr, 1, 0x07);
        string received = ReadWhileDataReady(guest);

        Assert.That(received, Is.EqualTo("qrstuvwxyz"), "the first 16 were in the FIFO the driver cleared; the rest arrive");
    }

    [Test]
    public void BytesSentBeforeTheDeviceIsOnAServerWaitForTheDriver([Values] GuestArchitecture architecture)
    {
        // Host input that arrives before the device is on a server: it used to post its feed to a server the device had
        // not joined, an exception that also left the feed marked as queued forever.
        var serial = new PciSerialDevice(_ => { });
        Assert.That(serial.SendToGuest("early "u8), Is.EqualTo(6));
        using var guest = new DeviceOnGuest(architecture, serial);
        guest.Write(Fcr, 1, 0x01);
        serial.SendToGuest("late"u8);
        Assert.That(Wait.Until(() => serial.BytesWaiting == 0), Is.True, "the second send posted its feed: the first left none stuck");

        string received = ReadWhileDataReady(guest);

        Assert.That(received, Is.EqualTo("early late"));
    }

    [Test]
    public void BelowTheTriggerLevelTheReceiverReportsACharacterTimeout([Values] GuestArchitecture architecture)
    {
        var serial = new PciSerialDevice(_ => { });
        using var guest = new DeviceOnGuest(architecture, serial);
        guest.Write(Fcr, 1, 0xC1);
        guest.Write(Ier, 1, 0x01);
        serial.SendToGuest("hi"u8);

        Assert.That(Wait.Until(() => (guest.Read(Lsr, 1) & 1) != 0), Is.True);
        Assert.That(guest.Read(Iir, 1), Is.EqualTo(0xCCUL), "2 bytes under a trigger level of 14: character timeout");
        Assert.That((char)guest.Read(Rbr, 1), Is.EqualTo('h'));
        Assert.That((char)guest.Read(Rbr, 1), Is.EqualTo('i'));
        Assert.That(guest.Read(Rbr, 1), Is.Zero, "an empty receiver reads 0");
    }

    [Test]
    public void LoopbackReturnsTransmittedBytesToTheReceiverInsteadOfTheLine([Values] GuestArchitecture architecture)
    {
        var sent = new ConcurrentQueue<byte>();
        using var guest = new DeviceOnGuest(architecture, new PciSerialDevice(sent.Enqueue));
        guest.Write(Fcr, 1, 0x01);
        guest.Write(Mcr, 1, 0x10);
        guest.Write(Thr, 1, 0x42);
        guest.Write(Thr, 1, 0x43);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Read(Rbr, 1), Is.EqualTo(0x42UL));
            Assert.That(guest.Read(Rbr, 1), Is.EqualTo(0x43UL));
            Assert.That(sent, Is.Empty);
        }
    }

    /// <summary>Reads RBR while LSR says data is ready, as the 8250 driver's receive loop does (bounded).</summary>
    private static string ReadWhileDataReady(DeviceOnGuest guest)
    {
        var received = new StringBuilder();
        while ((guest.Read(Lsr, 1) & 1) != 0 && received.Length < 1000)
        {
            received.Append((char)guest.Read(Rbr, 1));
        }

        return received.ToString();
    }
}
