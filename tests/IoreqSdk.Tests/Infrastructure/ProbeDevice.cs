using System;
using System.Collections.Generic;
using IoreqSdk.Pci;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>
/// The PCI test device: an I/O BAR, a 32-bit and a 64-bit prefetchable memory BAR, MSI, MSI-X (table and PBA in
/// BAR 1), PCI Express, power management and vendor capabilities, INTA. It records every BAR access it sees.
/// </summary>
internal sealed class ProbeDevice : PciDevice
{
    private readonly Dictionary<(int Bar, ulong Offset), ulong> _storage = new();

    public ProbeDevice(byte interruptPin = 1, bool messages = true)
        : base("probe", new PciIdentity { VendorId = 0x1af4, DeviceId = 0x10f0, ClassCode = 0xff0000, RevisionId = 2, SubsystemId = 0x1100, InterruptPin = interruptPin })
    {
        IoBar = AddIoBar(0, 32);
        Mmio = AddMemoryBar(1, 4096);
        Mmio64 = AddMemoryBar(2, 1 << 20, is64Bit: true, prefetchable: true);
        Rom = AddExpansionRom(0x800);
        if (messages)
        {
            AddMsiCapability(vectors: 2, is64Bit: true, perVectorMasking: true);
            AddMsixCapability(4, Mmio, tableOffset: 0x800, pendingOffset: 0xC00);
        }

        AddPciExpressCapability();
        AddPowerManagementCapability();
        AddVendorCapability([0xAA, 0xBB, 0xCC]);
    }

    public PciBar IoBar { get; }

    public PciBar Mmio { get; }

    public PciBar Mmio64 { get; }

    public PciBar Rom { get; }

    public List<(int Bar, bool Write, ulong Offset, int Size, ulong Value)> Traffic { get; } = new();

    // On the loop, as a device raises interrupts (the SDK refuses other threads while the server runs).
    public void Interrupt(int vector) => OnLoop(() => SignalInterrupt(vector));

    public void Line(bool asserted) => OnLoop(() => SetIntx(asserted));

    private void OnLoop(Action action)
    {
        using var done = new System.Threading.ManualResetEventSlim();
        Exception? error = null;
        if (!Context.TryPost(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                error = e;
            }

            done.Set();
        }))
        {
            action();   // not running: any thread may
            return;
        }

        if (!done.Wait(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException("the loop never ran the posted work");
        }

        if (error is not null)
        {
            throw error;
        }
    }

    public bool Dma(ulong address, Span<byte> buffer) => TryDmaRead(address, buffer);

    /// <summary>A DMA read done where devices do DMA, on the server's loop (guest memory refuses other threads).</summary>
    public bool DmaOnLoop(ulong address, byte[] buffer)
    {
        bool result = false;
        using var done = new System.Threading.ManualResetEventSlim();
        Context.Post(() =>
        {
            result = TryDmaRead(address, buffer);
            done.Set();
        });
        if (!done.Wait(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException("the loop never ran the posted DMA");
        }

        return result;
    }

    protected override ReadOnlySpan<byte> RomImage => [0x55, 0xAA, 0x01];

    protected override ulong ReadBar(PciBar bar, ulong offset, int size)
    {
        ulong value = 0;
        for (int i = size - 1; i >= 0; i--)
        {
            value = (value << 8) | (_storage.TryGetValue((bar.Index, offset + (ulong)i), out ulong b) ? b : 0);
        }

        Traffic.Add((bar.Index, false, offset, size, value));
        return value;
    }

    protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
    {
        Traffic.Add((bar.Index, true, offset, size, value));
        for (int i = 0; i < size; i++)
        {
            _storage[(bar.Index, offset + (ulong)i)] = (value >> (8 * i)) & 0xFF;
        }
    }
}
