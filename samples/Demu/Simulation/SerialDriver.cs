using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using IoreqSdk.Devices;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Devices.Uart;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Simulation;

namespace Demu.Simulation;

/// <summary>
/// A guest driver for the UART that uses its registers the way Linux's 8250 driver does: probe (scratch, IER,
/// loopback, FIFO type), program 115200 8N1, then interrupt-driven transmit and receive.
/// </summary>
internal sealed class SerialDriver : GuestDriver
{
    public const string GuestMessage = "Hello from the guest's 8250 driver, sent a FIFO at a time.\n";
    public const string HostMessage = "Hello guest, this is demu: more than one FIFO of text.\n";

    private const int Rbr = 0, Thr = 0, Dll = 0, Ier = 1, Dlm = 1, Iir = 2, Fcr = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;

    private readonly PciSerialDevice _device;
    private readonly Func<string> _transmitted;
    private string _received = string.Empty;

    public SerialDriver(SimulatedHypervisor xen, PciPlatform platform, EnumeratedFunction function, PciSerialDevice device, Func<string> transmitted, InterruptLine intx, TextWriter transcript)
        : base(xen, platform, function, intx, transcript)
    {
        _device = device;
        _transmitted = transmitted;
    }

    public override IEnumerable<(string Label, string Text)> Summary =>
    [
        ("guest saw", $"16550A {Function.VendorId:x4}:{Function.DeviceId:x4} at {Function.Address}, class {Function.ClassCode:x6}, 115200 8N1"),
        ("interrupts", $"{Interrupts.Taken} taken by the guest ({Interrupts.Route})"),
        ("serial", $"{_device.BytesTransmitted} bytes guest -> host, {_device.BytesReceived} bytes host -> guest, {_device.Uart.Overruns} overruns"),
    ];

    public override void ReadIdleRegister() => Pci.ReadBar(Bar(0), Scr, 1);

    public override void Run()
    {
        AssignedBar port = Bar(0);
        byte In(int register) => (byte)Pci.ReadBar(port, (ulong)register, 1);
        void Out(int register, byte value) => Pci.WriteBar(port, (ulong)register, 1, value);

        Out(Scr, 0x55);
        byte a = In(Scr);
        Out(Scr, 0xAA);
        byte b = In(Scr);
        Out(Ier, 0);
        byte ierOff = In(Ier);
        Out(Ier, 0x0F);
        byte ierAll = In(Ier);
        Out(Ier, 0);
        Check("probe", a == 0x55 && b == 0xAA && ierOff == 0 && ierAll == 0x0F, $"scratch 0x{a:x2}/0x{b:x2}, IER 0x{ierOff:x2}/0x{ierAll:x2}");

        Out(Mcr, 0x1A);
        byte loop = (byte)(In(Msr) & 0xF0);
        Out(Mcr, 0);
        Check("loopback", loop == 0x90, $"MCR LOOP|OUT2|RTS: MSR status 0x{loop:x2} (DCD|CTS)");

        Out(Fcr, 0x01);
        int fifo = In(Iir) >> 6;
        Check("FIFO type", fifo == 3, fifo == 3 ? "IIR reports FIFOs enabled: 16550A" : $"IIR FIFO bits {fifo}");

        Out(Lcr, 0x80);
        Out(Dll, 1);
        Out(Dlm, 0);
        int divisor = In(Dll) | (In(Dlm) << 8);
        Out(Lcr, 0x03);
        Check("line settings", divisor == 1 && _device.Uart.Divisor == 1, $"divisor {divisor} (115200 baud), 8N1");

        Out(Fcr, 0x87);
        Out(Mcr, 0x0B);
        _ = In(Lsr);
        _ = In(Rbr);
        _ = In(Iir);
        _ = In(Msr);

        Transmit(In, Out);
        Receive(In, Out);

        Out(Ier, 0);
        Out(Mcr, 0);
    }

    private void Transmit(Func<int, byte> read, Action<int, byte> write)
    {
        byte[] message = Encoding.ASCII.GetBytes(GuestMessage);
        int sent = 0;
        int interrupts = 0;
        bool stalled = false;

        // Enabling THRI while THR is empty interrupts at once; each THRE interrupt then takes a FIFO's worth.
        Interrupts.Arm();
        write(Ier, 0x03);
        while (sent < message.Length)
        {
            if (!Interrupts.Wait())
            {
                stalled = true;
                break;
            }

            interrupts++;
            byte iir = read(Iir);
            if ((iir & 0x0F) != 0x02)
            {
                continue;
            }

            Interrupts.Arm();
            for (int n = 0; n < Uart16550.FifoSize && sent < message.Length; n++)
            {
                write(Thr, message[sent++]);
            }
        }

        write(Ier, 0x01);
        string text = _transmitted();
        Check("transmit (THRE irq)", !stalled && text == GuestMessage, $"{sent} bytes in {interrupts} interrupts: \"{Escape(text)}\"");
    }

    private void Receive(Func<int, byte> read, Action<int, byte> write)
    {
        var text = new StringBuilder();
        int interrupts = 0;
        Interrupts.Arm();
        _device.SendToGuest(Encoding.ASCII.GetBytes(HostMessage));
        while (text.Length < HostMessage.Length)
        {
            if ((read(Lsr) & 0x01) == 0)
            {
                if (!Interrupts.Wait())
                {
                    break;
                }

                interrupts++;
                _ = read(Iir);
            }

            Interrupts.Arm();
            while ((read(Lsr) & 0x01) != 0)
            {
                text.Append((char)read(Rbr));
            }
        }

        write(Ier, 0);
        _received = text.ToString();
        Check("receive (RX irq)", _received == HostMessage && _device.Uart.Overruns == 0, $"{_received.Length} bytes in {interrupts} interrupts: \"{Escape(_received)}\"");
    }

    private static string Escape(string text) => text.Replace("\n", "\\n", StringComparison.Ordinal);
}
