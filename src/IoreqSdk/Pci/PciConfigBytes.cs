using System;
using System.Buffers.Binary;

namespace IoreqSdk.Pci;

/// <summary>
/// A function's configuration space as bytes: the values, which bits the guest may write, and which it clears by
/// writing 1. The header's identification registers are set here; everything with behaviour (BARs, capabilities,
/// INTx) lives with its owner and reads or sets these bytes.
/// </summary>
internal sealed class PciConfigBytes
{
    private const int FirstCapability = 0x40;
    private const int StandardHeaderEnd = 0x100;

    private readonly byte[] _bytes = new byte[PciDevice.ConfigSpaceSize];
    private readonly byte[] _writable = new byte[PciDevice.ConfigSpaceSize];
    private readonly byte[] _writeOneToClear = new byte[PciDevice.ConfigSpaceSize];
    private int _nextCapability = FirstCapability;
    private int _lastCapability;

    /// <summary>A type-0 header for a function of this identity: read-only identification, the command register's
    /// writable bits, the status register's write-1-to-clear error bits.</summary>
    public PciConfigBytes(PciIdentity identity)
    {
        Set16(PciConfigRegisters.VendorId, identity.VendorId);
        Set16(PciConfigRegisters.DeviceId, identity.DeviceId);
        _bytes[PciConfigRegisters.RevisionId] = identity.RevisionId;
        _bytes[0x09] = (byte)identity.ClassCode;
        _bytes[0x0A] = (byte)(identity.ClassCode >> 8);
        _bytes[0x0B] = (byte)(identity.ClassCode >> 16);
        Set16(PciConfigRegisters.SubsystemVendorId, identity.SubsystemVendorId != 0 ? identity.SubsystemVendorId : identity.VendorId);
        Set16(PciConfigRegisters.SubsystemId, identity.SubsystemId);
        _bytes[PciConfigRegisters.InterruptPin] = identity.InterruptPin;

        // Command: I/O, memory, bus master, parity, SERR, INTx disable are writable.
        Writable16(PciConfigRegisters.Command, 0x0547);

        // Status: the error bits (8, 11-15) are write-1-to-clear; interrupt and capability bits are read-only.
        _writeOneToClear[PciConfigRegisters.Status + 1] = 0xF9;
        _writeOneToClear[PciConfigRegisters.Status] = 0x00;
        _writable[PciConfigRegisters.CacheLineSize] = 0xFF;
        _writable[PciConfigRegisters.LatencyTimer] = 0xFF;
        _writable[PciConfigRegisters.InterruptLine] = 0xFF;
    }

    /// <summary>The byte at an offset, as stored (without what is computed on read: the status register's interrupt bit, MSI's state).</summary>
    public ref byte this[int offset] => ref _bytes[offset];

    /// <summary>The bits of a byte the guest may write.</summary>
    public ref byte WritableMask(int offset) => ref _writable[offset];

    /// <summary>The bits of a byte the guest clears by writing 1.</summary>
    public ref byte WriteOneToClearMask(int offset) => ref _writeOneToClear[offset];

    /// <summary>The bytes from an offset on.</summary>
    public Span<byte> From(int offset) => _bytes.AsSpan(offset);

    /// <summary>Applies a guest's (valid) configuration write: each byte through its masks, except BAR bytes, which are
    /// taken whole and then given BAR semantics by <paramref name="bars"/>.</summary>
    public void WriteGuest(int register, int size, uint value, PciBars bars)
    {
        bool touchesBars = false;
        for (int i = 0; i < size; i++)
        {
            int offset = register + i;
            byte b = (byte)(value >> (8 * i));
            if (PciBars.IsBarByte(offset))
            {
                // BARs are whole registers: assemble the new dword and apply BAR semantics below.
                _bytes[offset] = b;
                touchesBars = true;
                continue;
            }

            WriteByte(offset, b);
        }

        if (touchesBars)
        {
            for (int reg = register & ~3; reg < register + size; reg += 4)
            {
                if (PciBars.IsBarByte(reg))
                {
                    bars.Normalise(reg);
                }
            }
        }
    }

    /// <summary>Applies a guest's write of one byte: only its writable bits change, and a 1 clears a write-1-to-clear bit.</summary>
    private void WriteByte(int offset, byte value)
    {
        byte old = _bytes[offset];
        byte updated = (byte)((old & ~_writable[offset]) | (value & _writable[offset]));
        updated &= (byte)~(value & _writeOneToClear[offset]);
        _bytes[offset] = updated;
    }

    public ushort Get16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_bytes.AsSpan(offset));

    public uint Get32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_bytes.AsSpan(offset));

    public void Set16(int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(_bytes.AsSpan(offset), value);

    public void Set32(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_bytes.AsSpan(offset), value);

    public void Writable16(int offset, ushort mask) => BinaryPrimitives.WriteUInt16LittleEndian(_writable.AsSpan(offset), mask);

    public void Writable32(int offset, uint mask) => BinaryPrimitives.WriteUInt32LittleEndian(_writable.AsSpan(offset), mask);

    public void WriteOneToClear16(int offset, ushort mask) => BinaryPrimitives.WriteUInt16LittleEndian(_writeOneToClear.AsSpan(offset), mask);

    /// <summary>Links a capability of <paramref name="length"/> bytes at the end of the list; its offset.</summary>
    public int AddCapability(byte id, int length)
    {
        int offset = _nextCapability;
        if (offset + length > StandardHeaderEnd)
        {
            ThrowHelper.ThrowInvalidOperation("The capabilities do not fit in the 192 bytes after the header.");
        }

        _bytes[offset] = id;
        _bytes[offset + 1] = 0;
        if (_lastCapability == 0)
        {
            _bytes[PciConfigRegisters.CapabilitiesPointer] = (byte)offset;
            _bytes[PciConfigRegisters.Status] |= (byte)PciConfigRegisters.StatusCapabilities;
        }
        else
        {
            _bytes[_lastCapability + 1] = (byte)offset;
        }

        _lastCapability = offset;
        _nextCapability = (offset + length + 3) & ~3;
        return offset;
    }

    /// <summary>Takes the capabilities with these ids out of the list (their control bytes become read-only).</summary>
    public void UnlinkCapabilities(byte first, byte second)
    {
        int previous = PciConfigRegisters.CapabilitiesPointer;
        int current = _bytes[previous];
        while (current != 0)
        {
            int next = _bytes[current + 1];
            byte id = _bytes[current];
            if (id == first || id == second)
            {
                _bytes[previous] = (byte)next;
                _writable[current + 2] = 0;
                _writable[current + 3] = 0;
            }
            else
            {
                previous = current + 1;
            }

            current = next;
        }

    }
}
