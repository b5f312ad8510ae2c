using System;
using System.Buffers.Binary;

namespace IoreqSdk.Pci;

/// <summary>
/// MSI-X: the table and PBA in a BAR, the function mask and per-vector masks, pending delivery on unmask — an open
/// capability whose write hook delivers what the enable and function-mask bits unmask.
/// </summary>
internal sealed class PciMsix : PciCapability
{
    private const int Control = 2;

    private readonly PciInterrupts _interrupts;
    private readonly int _vectors;
    private readonly uint _tableOffset;
    private readonly uint _pendingOffset;
    private readonly byte[] _table;
    private readonly ulong[] _pending;

    /// <summary>The capability (not added yet): 1 to 2048 vectors, the table and PBA at these offsets of BAR <paramref name="bar"/>.</summary>
    public PciMsix(PciInterrupts interrupts, int vectors, int bar, uint tableOffset, uint pendingOffset)
        : base(PciConfigRegisters.CapabilityMsix, 12)
    {
        _interrupts = interrupts;
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

    public bool Enabled => (Read8(Control + 1) & 0x80) != 0;

    private bool FunctionMasked => (Read8(Control + 1) & 0x40) != 0;

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

    /// <summary>The table size, the writable enable and function-mask bits, and where the table and PBA live.</summary>
    protected override void OnAdded()
    {
        Write16(Control, (ushort)(_vectors - 1));
        SetWritable(Control, 2, 0xC000);   // enable, function mask
        Write32(4, _tableOffset | (uint)Bar);
        Write32(8, _pendingOffset | (uint)Bar);
    }

    /// <summary>Enabling MSI-X or clearing the function mask delivers what is pending and unmasked.</summary>
    protected override void OnWritten(int at, int size)
    {
        if (at <= Control + 1 && at + size > Control)
        {
            DeliverPending();
        }
    }

    /// <summary>
    /// The entry's mask bit holds it, unless the entry is Xen's pirq encoding: found on real Xen, where a Linux HVM guest
    /// (arch/x86/pci/xen.c) writes vector 0 with the pirq in the destination id, masks through the pirq's event channel
    /// and never touches the table's mask bits (it sets pci_msi_ignore_mask), so they keep their reset value, masked;
    /// Xen's hvm_inject_msi turns such a message into the pirq's event. QEMU's msix_vector_masked treats it the same.
    /// </summary>
    private bool EntryMasked(int vector) => (_table[(vector * 16) + 12] & 1) != 0 && !IsXenPirqMessage(vector);

    /// <summary>
    /// Vector 0 (never a fixed interrupt on x86: vectors 0-15 are reserved), an address in the interrupt window and a
    /// pirq above 0 (Xen's <c>((addr &gt;&gt; 32) &amp; 0xffffff00) | dest</c>): an entry never programmed (all zero) is none.
    /// </summary>
    private bool IsXenPirqMessage(int vector)
    {
        ReadOnlySpan<byte> entry = _table.AsSpan(vector * 16, 16);
        ulong address = BinaryPrimitives.ReadUInt64LittleEndian(entry);
        uint data = BinaryPrimitives.ReadUInt32LittleEndian(entry.Slice(8));
        ulong pirq = ((address >> 32) & 0xFFFF_FF00) | ((address >> 12) & 0xFF);
        return (data & 0xFF) == 0 && (address & 0xFFF0_0000) == 0xFEE0_0000 && pirq != 0;
    }

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
        _interrupts.SendMessage(address, data);
    }
}
