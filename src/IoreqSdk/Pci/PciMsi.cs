using System;

namespace IoreqSdk.Pci;

/// <summary>MSI: enable, multiple-message enable, per-vector masks and the pending bits the SDK owns.</summary>
internal sealed class PciMsi
{
    private readonly PciConfigBytes _config;
    private readonly PciInterrupts _interrupts;
    private readonly int _offset;
    private readonly bool _is64Bit;
    private readonly int _maskOffset;
    private readonly int _vectors;
    private uint _pending;

    private PciMsi(PciConfigBytes config, PciInterrupts interrupts, int offset, bool is64Bit, int maskOffset, int vectors)
    {
        _config = config;
        _interrupts = interrupts;
        _offset = offset;
        _is64Bit = is64Bit;
        _maskOffset = maskOffset;
        _vectors = vectors;
    }

    /// <summary>Sets up the capability's registers at <paramref name="offset"/> (its header linked already): control,
    /// the writable address and data, and the per-vector mask bits when it has them.</summary>
    public static PciMsi Declare(PciConfigBytes config, PciInterrupts interrupts, int offset, int vectors, bool is64Bit, bool perVectorMasking)
    {
        int log2 = 0;
        while ((1 << log2) < vectors)
        {
            log2++;
        }

        ushort control = (ushort)((log2 << 1) | (is64Bit ? 0x80 : 0) | (perVectorMasking ? 0x100 : 0));
        config.Set16(offset + 2, control);
        config.Writable16(offset + 2, 0x0071);               // enable, multiple message enable
        config.Writable32(offset + 4, 0xFFFF_FFFC);         // address (dword aligned)
        int data = offset + (is64Bit ? 12 : 8);
        if (is64Bit)
        {
            config.Writable32(offset + 8, 0xFFFF_FFFF);
        }

        config.Writable16(data, 0xFFFF);
        int mask = -1;
        if (perVectorMasking)
        {
            mask = data + 4;
            config.Writable32(mask, vectors == 32 ? uint.MaxValue : (1u << vectors) - 1);
        }

        return new PciMsi(config, interrupts, offset, is64Bit, mask, vectors);
    }

    public bool Enabled => (_config[_offset + 2] & 1) != 0;

    private int EnabledVectors => Math.Min(_vectors, 1 << ((_config[_offset + 2] >> 4) & 7));

    public bool TryReadByte(int offset, out byte value)
    {
        // The pending bits follow the mask bits; they are read-only and reflect the SDK's state.
        int pending = _maskOffset + 4;
        if (_maskOffset >= 0 && offset >= pending && offset < pending + 4)
        {
            value = (byte)(_pending >> (8 * (offset - pending)));
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

    public void AfterConfigWrite(int register, int size)
    {
        if (_pending == 0 || !Enabled || _maskOffset < 0 || register + size <= _maskOffset || register >= _maskOffset + 4)
        {
            return;
        }

        // Unmasked vectors with a pending message are delivered now.
        for (int vector = 0; vector < _vectors; vector++)
        {
            if ((_pending & (1u << vector)) != 0 && !Masked(vector))
            {
                _pending &= ~(1u << vector);
                Send(vector);
            }
        }
    }

    private bool Masked(int vector) => _maskOffset >= 0 && (_config.Get32(_maskOffset) & (1u << vector)) != 0;

    private void Send(int vector)
    {
        ulong address = _config.Get32(_offset + 4) | (_is64Bit ? (ulong)_config.Get32(_offset + 8) << 32 : 0);
        uint data = _config.Get16(_offset + (_is64Bit ? 12 : 8));

        // With several vectors enabled, the low bits of the data carry the vector number.
        uint vectorBits = (uint)EnabledVectors - 1;
        data = (data & ~vectorBits) | ((uint)vector & vectorBits);
        _interrupts.SendMessage(address, data);
    }
}
