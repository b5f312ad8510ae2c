using System;
using System.Collections.Generic;
using System.IO;
using IoreqSdk.Devices;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Simulation;

namespace Demu.Simulation;

/// <summary>A guest driver for edu, following QEMU's <c>docs/specs/edu.rst</c> register by register.</summary>
internal sealed class EduDriver : GuestDriver
{
    private const ulong RamSource = 0x10_0000;
    private const ulong RamDestination = 0x20_0000;
    private const int DmaLength = 256;
    private const uint MsiVector = 0x41;

    private readonly EduDevice _device;
    private uint _identification;

    public EduDriver(SimulatedHypervisor xen, PciPlatform platform, EnumeratedFunction function, EduDevice device, InterruptLine intx, TextWriter transcript)
        : base(xen, platform, function, intx, transcript) => _device = device;

    public override IEnumerable<(string Label, string Text)> Summary =>
    [
        ("guest saw", $"edu {Function.VendorId:x4}:{Function.DeviceId:x4} at {Function.Address}, identification 0x{_identification:x8}"),
        ("interrupts", $"{_device.InterruptsRaised} raised by the device, {Interrupts.Taken} taken by the guest ({Interrupts.Route})"),
        ("DMA", $"{_device.DmaBytes} bytes moved, {_device.DmaErrors} transfer(s) refused"),
    ];

    public override void ReadIdleRegister() => Pci.ReadBar(Bar(0), 0x00, 4);

    public override void Run()
    {
        AssignedBar bar = Bar(0);
        uint Read(ulong offset) => (uint)Pci.ReadBar(bar, offset, 4);
        void Write(ulong offset, uint value) => Pci.WriteBar(bar, offset, 4, value);

        _identification = Read(0x00);
        Check("identification", _identification == EduDevice.Identification, $"0x{_identification:x8} (edu {_identification >> 24}.{(_identification >> 16) & 0xFF})");

        Write(0x04, 0x1234_5678);
        uint inverse = Read(0x04);
        Check("liveness check", inverse == ~0x1234_5678u, $"wrote 0x12345678, read back 0x{inverse:x8}");

        Write(0x08, 10);
        bool finished = PollUntil(() => (Read(0x20) & 1) == 0);
        uint factorial = Read(0x08);
        Check("factorial (polled)", finished && factorial == 3_628_800, $"10! = {factorial}, status bit polled until clear");

        EnableMsi();

        Write(0x20, 0x80);
        Interrupts.Arm();
        Write(0x08, 12);
        bool interrupted = Interrupts.Wait();
        uint status = Read(0x24);
        Write(0x64, status);
        factorial = Read(0x08);
        Check("factorial (interrupt)", interrupted && status == EduDevice.FactorialInterrupt && factorial == 479_001_600, $"12! = {factorial}, interrupt status 0x{status:x}, acknowledged");
        Write(0x20, 0);

        Interrupts.Arm();
        Write(0x60, 0x8000_0000);
        interrupted = Interrupts.Wait();
        status = Read(0x24);
        Write(0x64, status);
        uint after = Read(0x24);
        Check("raise / acknowledge", interrupted && status == 0x8000_0000 && after == 0, $"raised 0x80000000, status 0x{status:x8}, 0x{after:x} after acknowledge");

        RunDma();
    }

    private void EnableMsi()
    {
        int msi = Pci.FindCapability(Function.Address, 0x05);
        if (msi == 0)
        {
            Note("MSI", $"no MSI capability offered (the platform cannot inject MSIs); using {Interrupts.Route}");
            return;
        }

        uint control = Pci.ReadConfig(Function.Address, msi + 2, 2);
        bool is64 = (control & 0x80) != 0;
        Pci.WriteConfig(Function.Address, msi + 4, 4, 0xFEE0_0000);
        if (is64)
        {
            Pci.WriteConfig(Function.Address, msi + 8, 4, 0);
        }

        Pci.WriteConfig(Function.Address, msi + (is64 ? 12 : 8), 2, MsiVector);
        Pci.WriteConfig(Function.Address, msi + 2, 2, control | 1);
        Interrupts.UseMsi = true;
        Note("MSI", $"capability at 0x{msi:x2}, {(is64 ? "64" : "32")}-bit, address 0xfee00000 vector 0x{MsiVector:x2}, enabled");
    }

    private void RunDma()
    {
        AssignedBar bar = Bar(0);
        void Write64(ulong offset, ulong value) => Pci.WriteBar(bar, offset, 8, value);

        Span<byte> ram = Xen.Ram;
        for (int i = 0; i < DmaLength; i++)
        {
            ram[(int)RamSource + i] = (byte)(i * 7 + 3);
            ram[(int)RamDestination + i] = 0;
        }

        // RAM -> device buffer, then device buffer -> elsewhere in RAM, each with its completion interrupt.
        bool first = Transfer(Xen.RamBase + RamSource, EduDevice.DmaBufferStart, DmaLength, toRam: false);
        bool second = Transfer(EduDevice.DmaBufferStart, Xen.RamBase + RamDestination, DmaLength, toRam: true);
        bool same = ram.Slice((int)RamSource, DmaLength).SequenceEqual(ram.Slice((int)RamDestination, DmaLength));
        Check("DMA round trip", first && second && same, $"{DmaLength} bytes RAM -> buffer -> RAM at 0x{RamDestination:x}, {(same ? "identical" : "different")}");

        // A hostile transfer: past the end of the 4 KiB buffer. The device refuses it and still completes.
        long refusedBefore = _device.DmaErrors;
        bool completed = Transfer(EduDevice.DmaBufferStart + 0xF00, Xen.RamBase + RamDestination, 0x200, toRam: true);
        Check("DMA outside buffer", completed && _device.DmaErrors == refusedBefore + 1, "0x200 bytes from buffer offset 0xf00: refused, command completed");

        bool Transfer(ulong source, ulong destination, ulong count, bool toRam)
        {
            Write64(0x80, source);
            Write64(0x88, destination);
            Write64(0x90, count);
            Interrupts.Arm();
            Write64(0x98, 1 | (toRam ? 2u : 0u) | 4);
            bool interrupted = Interrupts.Wait();
            bool idle = PollUntil(() => (Pci.ReadBar(bar, 0x98, 8) & 1) == 0);
            uint status = (uint)Pci.ReadBar(bar, 0x24, 4);
            Pci.WriteBar(bar, 0x64, 4, status);
            return interrupted && idle && status == EduDevice.DmaInterrupt;
        }
    }
}
