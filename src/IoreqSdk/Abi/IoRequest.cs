using System.Runtime.InteropServices;

namespace IoreqSdk.Abi;

/// <summary>
/// One synchronous I/O request, byte for byte Xen's <c>ioreq_t</c> (<c>struct ioreq</c> in <c>xen/hvm/ioreq.h</c>):
/// 32 bytes, 8-byte aligned, little-endian.
/// </summary>
/// <remarks>
/// <para>Layout: <c>addr</c> u64 @0, <c>data</c> u64 @8, <c>count</c> u32 @16, <c>size</c> u32 @20,
/// <c>vp_eport</c> u32 @24, <c>_pad0</c> u16 @28, a flags byte @30 (see <see cref="IoRequestFlags"/>),
/// <c>type</c> u8 @31.</para>
/// <para>A value of this type is a private copy. The engine copies a request out of the shared page before
/// handling it and never reads the shared slot again; see <see cref="SharedIoPage"/>.</para>
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = SizeInBytes)]
public struct IoRequest
{
    /// <summary><c>sizeof(ioreq_t)</c>.</summary>
    public const int SizeInBytes = 32;

    /// <summary><c>_Alignof(ioreq_t)</c>: slots must lie at 8-byte aligned addresses.</summary>
    public const int Alignment = 8;

    /// <summary><c>offsetof(ioreq_t, addr)</c>.</summary>
    public const int AddressOffset = 0;

    /// <summary><c>offsetof(ioreq_t, data)</c>.</summary>
    public const int DataOffset = 8;

    /// <summary><c>offsetof(ioreq_t, count)</c>.</summary>
    public const int CountOffset = 16;

    /// <summary><c>offsetof(ioreq_t, size)</c>.</summary>
    public const int SizeOffset = 20;

    /// <summary><c>offsetof(ioreq_t, vp_eport)</c>.</summary>
    public const int VcpuEventPortOffset = 24;

    /// <summary><c>offsetof(ioreq_t, _pad0)</c>.</summary>
    public const int PaddingOffset = 28;

    /// <summary>The offset of the byte holding <c>state</c>, <c>data_is_ptr</c>, <c>dir</c> and <c>df</c>.</summary>
    public const int FlagsOffset = 30;

    /// <summary><c>offsetof(ioreq_t, type)</c>.</summary>
    public const int TypeOffset = 31;

    [FieldOffset(AddressOffset)]
    private ulong _address;

    [FieldOffset(DataOffset)]
    private ulong _data;

    [FieldOffset(CountOffset)]
    private uint _count;

    [FieldOffset(SizeOffset)]
    private uint _size;

    [FieldOffset(VcpuEventPortOffset)]
    private uint _vcpuEventPort;

    [FieldOffset(PaddingOffset)]
    private ushort _padding;

    [FieldOffset(FlagsOffset)]
    private byte _flags;

    [FieldOffset(TypeOffset)]
    private byte _type;

    /// <summary><c>addr</c>: a guest-physical address (MMIO), a port (PIO) or an encoded SBDF and register (PCI config).</summary>
    public ulong Address { readonly get => _address; set => _address = value; }

    /// <summary><c>data</c>: the value, or a guest-physical address of a RAM buffer when <see cref="DataIsPointer"/> is set.</summary>
    public ulong Data { readonly get => _data; set => _data = value; }

    /// <summary><c>count</c>: the repetition count of x86 string instructions; 1 for a simple access.</summary>
    public uint Count { readonly get => _count; set => _count = value; }

    /// <summary><c>size</c>: bytes per access.</summary>
    public uint Size { readonly get => _size; set => _size = value; }

    /// <summary><c>vp_eport</c>: the vCPU's event-channel port in the guest's port space (written by Xen).</summary>
    public uint VcpuEventPort { readonly get => _vcpuEventPort; set => _vcpuEventPort = value; }

    /// <summary><c>_pad0</c>: unused.</summary>
    public ushort Padding { readonly get => _padding; set => _padding = value; }

    /// <summary>Byte 30 as a whole: <c>state</c>, <c>data_is_ptr</c>, <c>dir</c>, <c>df</c> and <c>_pad1</c>.</summary>
    public byte Flags { readonly get => _flags; set => _flags = value; }

    /// <summary><c>type</c>.</summary>
    public IoreqType Type { readonly get => (IoreqType)_type; set => _type = (byte)value; }

    /// <summary><c>state</c> (bits 0–3 of byte 30). Setting it keeps the other bits of the byte.</summary>
    public IoreqState State
    {
        readonly get => IoRequestFlags.GetState(_flags);
        set => _flags = IoRequestFlags.WithState(_flags, value);
    }

    /// <summary><c>data_is_ptr</c> (bit 4 of byte 30).</summary>
    public bool DataIsPointer
    {
        readonly get => IoRequestFlags.GetBit(_flags, IoRequestFlags.DataIsPointerBit);
        set => _flags = IoRequestFlags.WithBit(_flags, IoRequestFlags.DataIsPointerBit, value);
    }

    /// <summary><c>dir</c> (bit 5 of byte 30).</summary>
    public IoreqDirection Direction
    {
        readonly get => IoRequestFlags.GetBit(_flags, IoRequestFlags.DirectionBit) ? IoreqDirection.Read : IoreqDirection.Write;
        set => _flags = IoRequestFlags.WithBit(_flags, IoRequestFlags.DirectionBit, value == IoreqDirection.Read);
    }

    /// <summary><c>df</c> (bit 6 of byte 30): x86's direction flag; when set, string addresses step downwards.</summary>
    public bool DirectionFlag
    {
        readonly get => IoRequestFlags.GetBit(_flags, IoRequestFlags.DirectionFlagBit);
        set => _flags = IoRequestFlags.WithBit(_flags, IoRequestFlags.DirectionFlagBit, value);
    }

    /// <summary>Whether the guest reads (<see cref="Direction"/> is <see cref="IoreqDirection.Read"/>).</summary>
    public bool IsRead => IoRequestFlags.GetBit(_flags, IoRequestFlags.DirectionBit);
}
