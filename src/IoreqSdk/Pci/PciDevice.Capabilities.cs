using System;
using System.Buffers.Binary;
using IoreqSdk.Devices;

namespace IoreqSdk.Pci;

/// <content>The capability list: MSI, MSI-X, PCI Express, power management and vendor-specific capabilities.</content>
public abstract partial class PciDevice
{
    private MsiState? _msi;
    private MsixState? _msix;
    private int _powerManagement;

    /// <summary>Adds an MSI capability. Masking and pending bits are owned by the SDK.</summary>
    /// <param name="vectors">1, 2, 4, 8, 16 or 32 vectors.</param>
    /// <param name="is64Bit">64-bit message addresses.</param>
    /// <param name="perVectorMasking">Per-vector mask and pending bits.</param>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddMsiCapability(int vectors = 1, bool is64Bit = true, bool perVectorMasking = true)
    {
        if (_msi is not null || vectors is not (1 or 2 or 4 or 8 or 16 or 32))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(vectors), "One MSI capability with 1, 2, 4, 8, 16 or 32 vectors.");
        }

        int length = 10 + (is64Bit ? 4 : 0) + (perVectorMasking ? 10 : 0);
        int offset = AddCapability(PciConfigRegisters.CapabilityMsi, length);
        int log2 = 0;
        while ((1 << log2) < vectors)
        {
            log2++;
        }

        ushort control = (ushort)((log2 << 1) | (is64Bit ? 0x80 : 0) | (perVectorMasking ? 0x100 : 0));
        _config.Set16(offset + 2, control);
        _config.Writable16(offset + 2, 0x0071);               // enable, multiple message enable
        _config.Writable32(offset + 4, 0xFFFF_FFFC);         // address (dword aligned)
        int data = offset + (is64Bit ? 12 : 8);
        if (is64Bit)
        {
            _config.Writable32(offset + 8, 0xFFFF_FFFF);
        }

        _config.Writable16(data, 0xFFFF);
        int mask = -1;
        if (perVectorMasking)
        {
            mask = data + 4;
            _config.Writable32(mask, vectors == 32 ? uint.MaxValue : (1u << vectors) - 1);
        }

        _msi = new MsiState(this, offset, is64Bit, mask, vectors);
        return offset;
    }

    /// <summary>
    /// Adds an MSI-X capability whose table and pending-bit array live in one of the device's memory BARs. The SDK
    /// serves the table and PBA, enforces the function mask and per-vector masks, and delivers pending vectors on
    /// unmask; the device's <see cref="ReadBar"/> never sees those offsets.
    /// </summary>
    /// <param name="vectors">1–2048 vectors.</param>
    /// <param name="bar">A memory BAR declared before.</param>
    /// <param name="tableOffset">The table's offset in the BAR (8-byte aligned; 16 bytes per vector).</param>
    /// <param name="pendingOffset">The PBA's offset in the BAR (8-byte aligned).</param>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddMsixCapability(int vectors, PciBar bar, uint tableOffset, uint pendingOffset)
    {
        if (_msix is not null || vectors < 1 || vectors > 2048)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(vectors), "One MSI-X capability with 1 to 2048 vectors.");
        }

        if (bar is null || bar.Kind is not (PciBarKind.Memory32 or PciBarKind.Memory64) || (tableOffset & 7) != 0 || (pendingOffset & 7) != 0
            || tableOffset + ((ulong)vectors * 16) > bar.Size || pendingOffset + ((((ulong)vectors + 63) / 64) * 8) > bar.Size)
        {
            ThrowHelper.ThrowArgument(nameof(bar), "The MSI-X table and PBA must be 8-byte aligned and fit inside a memory BAR.");
        }

        // The PCI specification lets software use aligned DWord and QWord accesses on the table and PBA: the BAR accepts
        // both whatever the device implements (the SDK serves those offsets; elsewhere they are adapted to the BAR's widths).
        bar.Region.Accept(AccessWidths.DWord | AccessWidths.QWord);

        int offset = AddCapability(PciConfigRegisters.CapabilityMsix, 12);
        _config.Set16(offset + 2, (ushort)(vectors - 1));
        _config.Writable16(offset + 2, 0xC000);   // enable, function mask
        _config.Set32(offset + 4, tableOffset | (uint)bar.Index);
        _config.Set32(offset + 8, pendingOffset | (uint)bar.Index);
        _msix = new MsixState(this, offset, bar.Index, vectors, tableOffset, pendingOffset);
        return offset;
    }

    /// <summary>Adds a PCI Express capability (version 2) describing an endpoint on a x1 2.5 GT/s link.</summary>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddPciExpressCapability()
    {
        int offset = AddCapability(PciConfigRegisters.CapabilityPciExpress, 0x3C);
        _config.Set16(offset + 2, 0x0002);      // version 2, endpoint
        _config.Writable16(offset + 8, 0x7CFF);    // device control
        _config.WriteOneToClear16(offset + 0xA, 0x000F); // device status errors
        _config.Set32(offset + 0xC, 0x0000_0011);  // link: 2.5 GT/s, x1
        _config.Writable16(offset + 0x10, 0x01C3);  // link control
        _config.Set16(offset + 0x12, 0x0011);    // link status: 2.5 GT/s, x1
        return offset;
    }

    /// <summary>Adds a power-management capability (version 3; D0 and D3hot).</summary>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddPowerManagementCapability()
    {
        if (_powerManagement != 0)
        {
            ThrowHelper.ThrowInvalidOperation("One power-management capability per function.");
        }

        int offset = AddCapability(PciConfigRegisters.CapabilityPowerManagement, 8);
        _powerManagement = offset;
        _config.Set16(offset + 2, 0x0003);       // version 3
        _config.Set16(offset + 4, 0x0008);       // No_Soft_Reset
        _config.Writable16(offset + 4, 0x0003);     // power state
        _config.WriteOneToClear16(offset + 4, 0x8000); // PME status
        return offset;
    }

    /// <summary>Adds a vendor-specific capability with a read-only payload.</summary>
    /// <param name="payload">Up to 250 bytes following the 3-byte header.</param>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddVendorCapability(ReadOnlySpan<byte> payload)
    {
        if (payload.Length > 250)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(payload), "A vendor capability holds at most 250 bytes of payload.");
        }

        int offset = AddCapability(PciConfigRegisters.CapabilityVendor, 3 + payload.Length);
        _config[offset + 2] = (byte)(3 + payload.Length);
        payload.CopyTo(_config.From(offset + 3));
        return offset;
    }

    /// <summary>
    /// Takes MSI and MSI-X out of the capability list, for platforms that cannot deliver messages (Xen 4.17 on
    /// Arm): the guest's driver then uses INTx.
    /// </summary>
    internal void HideMessageInterrupts()
    {
        int previous = PciConfigRegisters.CapabilitiesPointer;
        int current = _config[previous];
        while (current != 0)
        {
            int next = _config[current + 1];
            byte id = _config[current];
            if (id is PciConfigRegisters.CapabilityMsi or PciConfigRegisters.CapabilityMsix)
            {
                _config[previous] = (byte)next;
                _config.WritableMask(current + 2) = 0;
                _config.WritableMask(current + 3) = 0;
            }
            else
            {
                previous = current + 1;
            }

            current = next;
        }

        _msi = null;
        _msix = null;
    }

    /// <summary>
    /// Whether the driver put the function in D3hot (PMCSR power state 3): then it answers configuration accesses
    /// only (PCI Power Management 1.2, 5.4.1), so its BARs do not decode until it is back in D0.
    /// </summary>
    private bool InD3Hot => _powerManagement != 0 && (_config[_powerManagement + 4] & 0x3) == 0x3;

    /// <summary>Issues a message interrupt: a memory write by the function, so only while bus mastering is on.</summary>
    private void SendMessage(ulong address, uint data)
    {
        if (!BusMasterEnabled)
        {
            RefusedMessages++;
            return;
        }

        _bus?.SendMessage(this, address, data);
    }

    private int AddCapability(byte id, int length)
    {
        if (IsAttached)
        {
            ThrowHelper.ThrowInvalidOperation("Capabilities are declared before the device joins a server.");
        }

        int offset = _nextCapability;
        if (offset + length > StandardHeaderEnd)
        {
            ThrowHelper.ThrowInvalidOperation("The capabilities do not fit in the 192 bytes after the header.");
        }

        _config[offset] = id;
        _config[offset + 1] = 0;
        if (_lastCapability == 0)
        {
            _config[PciConfigRegisters.CapabilitiesPointer] = (byte)offset;
            _config[PciConfigRegisters.Status] |= (byte)PciConfigRegisters.StatusCapabilities;
        }
        else
        {
            _config[_lastCapability + 1] = (byte)offset;
        }

        _lastCapability = offset;
        _nextCapability = (offset + length + 3) & ~3;
        return offset;
    }

    /// <summary>MSI: enable, multiple-message enable, per-vector masks and the pending bits the SDK owns.</summary>
    private sealed class MsiState
    {
        private readonly PciDevice _device;
        private readonly int _offset;
        private readonly bool _is64Bit;
        private readonly int _maskOffset;
        private readonly int _vectors;
        private uint _pending;

        public MsiState(PciDevice device, int offset, bool is64Bit, int maskOffset, int vectors)
        {
            _device = device;
            _offset = offset;
            _is64Bit = is64Bit;
            _maskOffset = maskOffset;
            _vectors = vectors;
        }

        public bool Enabled => (_device._config[_offset + 2] & 1) != 0;

        private int EnabledVectors => Math.Min(_vectors, 1 << ((_device._config[_offset + 2] >> 4) & 7));

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

        private bool Masked(int vector) => _maskOffset >= 0 && (_device._config.Get32(_maskOffset) & (1u << vector)) != 0;

        private void Send(int vector)
        {
            ulong address = _device._config.Get32(_offset + 4) | (_is64Bit ? (ulong)_device._config.Get32(_offset + 8) << 32 : 0);
            uint data = _device._config.Get16(_offset + (_is64Bit ? 12 : 8));

            // With several vectors enabled, the low bits of the data carry the vector number.
            uint vectorBits = (uint)EnabledVectors - 1;
            data = (data & ~vectorBits) | ((uint)vector & vectorBits);
            _device.SendMessage(address, data);
        }
    }

    /// <summary>MSI-X: the table and PBA in a BAR, the function mask and per-vector masks, pending delivery on unmask.</summary>
    private sealed class MsixState
    {
        private readonly PciDevice _device;
        private readonly int _offset;
        private readonly int _vectors;
        private readonly uint _tableOffset;
        private readonly uint _pendingOffset;
        private readonly byte[] _table;
        private readonly ulong[] _pending;

        public MsixState(PciDevice device, int offset, int bar, int vectors, uint tableOffset, uint pendingOffset)
        {
            _device = device;
            _offset = offset;
            Bar = bar;
            _vectors = vectors;
            _tableOffset = tableOffset;
            _pendingOffset = pendingOffset;
            _table = new byte[vectors * 16];
            _pending = new ulong[(vectors + 63) / 64];
            for (int v = 0; v < vectors; v++)
            {
                _table[(v * 16) + 12] = 1;   // every vector starts masked
            }
        }

        public int Bar { get; }

        public bool Enabled => (_device._config[_offset + 3] & 0x80) != 0;

        private bool FunctionMasked => (_device._config[_offset + 3] & 0x40) != 0;

        public bool TryRead(ulong offset, int size, out ulong value)
        {
            value = 0;
            if (offset >= _tableOffset && offset < _tableOffset + (ulong)_table.Length)
            {
                int at = (int)(offset - _tableOffset);
                for (int i = Math.Min(size, _table.Length - at) - 1; i >= 0; i--)
                {
                    value = (value << 8) | _table[at + i];
                }

                return true;
            }

            ulong pendingBytes = (ulong)_pending.Length * 8;
            if (offset >= _pendingOffset && offset < _pendingOffset + pendingBytes)
            {
                int at = (int)(offset - _pendingOffset);
                for (int i = size - 1; i >= 0; i--)
                {
                    int b = at + i;
                    value = (value << 8) | (b < (int)pendingBytes ? (byte)(_pending[b / 8] >> (8 * (b % 8))) : (byte)0);
                }

                return true;
            }

            return false;
        }

        public bool TryWrite(ulong offset, int size, ulong value)
        {
            if (offset >= _tableOffset && offset < _tableOffset + (ulong)_table.Length)
            {
                int at = (int)(offset - _tableOffset);
                for (int i = 0; i < Math.Min(size, _table.Length - at); i++)
                {
                    _table[at + i] = (byte)(value >> (8 * i));
                }

                DeliverPending();
                return true;
            }

            // The PBA is read-only.
            return offset >= _pendingOffset && offset < _pendingOffset + ((ulong)_pending.Length * 8);
        }

        public void Signal(int vector)
        {
            if (!Enabled || (uint)vector >= (uint)_vectors)
            {
                return;
            }

            if (FunctionMasked || EntryMasked(vector))
            {
                _pending[vector / 64] |= 1UL << (vector % 64);
                return;
            }

            Send(vector);
        }

        public void AfterConfigWrite(int register, int size)
        {
            if (register <= _offset + 3 && register + size > _offset + 2)
            {
                DeliverPending();
            }
        }

        private bool EntryMasked(int vector) => (_table[(vector * 16) + 12] & 1) != 0;

        private void DeliverPending()
        {
            if (!Enabled || FunctionMasked)
            {
                return;
            }

            for (int vector = 0; vector < _vectors; vector++)
            {
                ulong bit = 1UL << (vector % 64);
                if ((_pending[vector / 64] & bit) != 0 && !EntryMasked(vector))
                {
                    _pending[vector / 64] &= ~bit;
                    Send(vector);
                }
            }
        }

        private void Send(int vector)
        {
            ReadOnlySpan<byte> entry = _table.AsSpan(vector * 16, 16);
            ulong address = BinaryPrimitives.ReadUInt64LittleEndian(entry);
            uint data = BinaryPrimitives.ReadUInt32LittleEndian(entry.Slice(8));
            _device.SendMessage(address, data);
        }
    }
}
