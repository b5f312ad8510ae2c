using System;

namespace IoreqSdk.Pci;

/// <summary>
/// MSI: enable, multiple-message enable, per-vector masks and the pending bits the SDK owns — an open capability:
/// its layout declared through the masks, its pending bits shown on read and pending messages delivered on unmask
/// by its hooks.
/// </summary>
internal sealed class PciMsi : PciCapability
{
    private const int Control = 2;
    private const int Address = 4;

    private readonly PciInterrupts _interrupts;
    private readonly bool _is64Bit;
    private readonly bool _perVectorMasking;
    private readonly int _vectors;
    private readonly int _data;
    private readonly int _mask;
    private uint _pending;

    /// <summary>The capability (not added yet): 1, 2, 4, 8, 16 or 32 vectors.</summary>
    public PciMsi(PciInterrupts interrupts, int vectors, bool is64Bit, bool perVectorMasking)
        : base(PciConfigRegisters.CapabilityMsi, 10 + (is64Bit ? 4 : 0) + (perVectorMasking ? 10 : 0))
    {
        _interrupts = interrupts;
        _vectors = vectors;
        _is64Bit = is64Bit;
        _perVectorMasking = perVectorMasking;
        _data = is64Bit ? 12 : 8;
        _mask = perVectorMasking ? _data + 4 : -1;
    }

    public bool Enabled => (Read8(Control) & 1) != 0;

    private int EnabledVectors => Math.Min(_vectors, 1 << ((Read8(Control) >> 4) & 7));

    /// <summary>Control, the writable address and data, and the per-vector mask bits when it has them.</summary>
    protected override void OnAdded()
    {
        int log2 = 0;
        while ((1 << log2) < _vectors)
        {
            log2++;
        }

        Write16(Control, (ushort)((log2 << 1) | (_is64Bit ? 0x80 : 0) | (_perVectorMasking ? 0x100 : 0)));
        SetWritable(Control, 2, 0x0071);               // enable, multiple message enable
        SetWritable(Address, 4, 0xFFFF_FFFC);          // address (dword aligned)
        if (_is64Bit)
        {
            SetWritable(Address + 4, 4, 0xFFFF_FFFF);
        }

        SetWritable(_data, 2, 0xFFFF);
        if (_perVectorMasking)
        {
            SetWritable(_mask, 4, _vectors == 32 ? uint.MaxValue : (1u << _vectors) - 1);
        }
    }

    /// <summary>The pending bits follow the mask bits: read-only, and the SDK's state rather than stored bytes.</summary>
    protected override void OnRead(int at, int size, ref uint value)
    {
        for (int i = 0; i < size; i++)
        {
            if (TryReadPending(at + i, out byte pending))
            {
                value = (value & ~(0xFFu << (8 * i))) | ((uint)pending << (8 * i));
            }
        }
    }

    /// <summary>Unmasked vectors with a pending message are delivered when the driver writes the mask bits.</summary>
    protected override void OnWritten(int at, int size)
    {
        if (_pending == 0 || !Enabled || _mask < 0 || at + size <= _mask || at >= _mask + 4)
        {
            return;
        }

        for (int vector = 0; vector < _vectors; vector++)
        {
            if ((_pending & (1u << vector)) != 0 && !Masked(vector))
            {
                _pending &= ~(1u << vector);
                Send(vector);
            }
        }
    }

    /// <summary>A pending-bit byte, by offset in the capability (for reads and dumps).</summary>
    public bool TryReadPending(int at, out byte value)
    {
        int pending = _mask + 4;
        if (_mask >= 0 && at >= pending && at < pending + 4)
        {
            value = (byte)(_pending >> (8 * (at - pending)));
            return true;
        }

        value = 0;
        return false;
    }

    public void Signal(int vector)
    {
        if (!Enabled || (uint)vector >= (uint)EnabledVectors)
        {
            return;
        }

        if (Masked(vector))
        {
            _pending |= 1u << vector;
            return;
        }

        Send(vector);
    }

    private bool Masked(int vector) => _mask >= 0 && (Read32(_mask) & (1u << vector)) != 0;

    private void Send(int vector)
    {
        ulong address = Read32(Address) | (_is64Bit ? (ulong)Read32(Address + 4) << 32 : 0);
        uint data = Read16(_data);

        // With several vectors enabled, the low bits of the data carry the vector number.
        uint vectorBits = (uint)EnabledVectors - 1;
        data = (data & ~vectorBits) | ((uint)vector & vectorBits);
        _interrupts.SendMessage(address, data);
    }
}
