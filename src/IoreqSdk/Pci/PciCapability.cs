using System;

namespace IoreqSdk.Pci;

/// <summary>
/// A capability in a <see cref="PciDevice"/>'s list, of any id and a layout the device declares: which of its bytes
/// the guest may write, which bits it clears by writing 1 (everything else is read-only), and — by overriding
/// <see cref="OnRead"/> and <see cref="OnWritten"/> — what happens when the guest reads or writes inside it. Added
/// with <see cref="PciDevice.AddCapability{TCapability}(TCapability)"/> in the device's constructor.
/// </summary>
/// <remarks>
/// <para>
/// Offsets (<c>at</c>) are relative to the capability's first byte, its id. Bytes 0 and 1 (id, next pointer) belong
/// to the SDK and are never writable; for a vendor-specific capability (id 0x09) byte 2 holds its length, set by the
/// SDK. The stored bytes are the guest's view: a guest write goes through the masks into them, and a read assembles
/// them, before the hooks run.
/// </para>
/// <para>
/// Hooks run on the server's event loop, inside the guest's configuration access (so they are quick, as every
/// handler; an exception is contained and counted as a device fault like any handler's). Accessors read and set the
/// stored bytes; on the loop only, once the device runs.
/// </para>
/// </remarks>
public class PciCapability
{
    /// <summary>The most a capability in the standard 192 bytes after the header can hold.</summary>
    public const int MaxLength = 192;

    private PciConfigBytes? _config;

    /// <summary>Creates a capability to add to a device.</summary>
    /// <param name="id">The capability id (0x09 vendor-specific, or any other the device implements).</param>
    /// <param name="length">Its length in bytes, the 2-byte header included (3 or more for a vendor capability).</param>
    public PciCapability(byte id, int length)
    {
        if (length < 2 || length > MaxLength || (id == PciConfigRegisters.CapabilityVendor && length < 3))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(length), "A capability is 2 to 192 bytes, header included (a vendor capability at least 3: it holds its length).");
        }

        Id = id;
        Length = length;
    }

    /// <summary>The capability id.</summary>
    public byte Id { get; }

    /// <summary>The length in bytes, header included.</summary>
    public int Length { get; }

    /// <summary>The capability's offset in configuration space; 0 until it is added to a device.</summary>
    public int Offset { get; private set; }

    /// <summary>Whether the capability has been added to a device.</summary>
    public bool IsAdded => _config is not null;

    /// <summary>Reads a stored byte.</summary>
    /// <param name="at">The offset in the capability.</param>
    /// <returns>The byte.</returns>
    public byte Read8(int at) => Bytes(at, 1)[Offset + at];

    /// <summary>Reads a stored little-endian 16-bit field.</summary>
    /// <param name="at">The offset in the capability.</param>
    /// <returns>The value.</returns>
    public ushort Read16(int at) => Bytes(at, 2).Get16(Offset + at);

    /// <summary>Reads a stored little-endian 32-bit field.</summary>
    /// <param name="at">The offset in the capability.</param>
    /// <returns>The value.</returns>
    public uint Read32(int at) => Bytes(at, 4).Get32(Offset + at);

    /// <summary>Sets a stored byte, whatever its masks (the device's side of a read-only or writable field).</summary>
    /// <param name="at">The offset in the capability (2 or more: the header is the SDK's).</param>
    /// <param name="value">The value.</param>
    public void Write8(int at, byte value) => Payload(at, 1)[Offset + at] = value;

    /// <summary>Sets a stored little-endian 16-bit field, whatever its masks.</summary>
    /// <param name="at">The offset in the capability (2 or more).</param>
    /// <param name="value">The value.</param>
    public void Write16(int at, ushort value) => Payload(at, 2).Set16(Offset + at, value);

    /// <summary>Sets a stored little-endian 32-bit field, whatever its masks.</summary>
    /// <param name="at">The offset in the capability (2 or more).</param>
    /// <param name="value">The value.</param>
    public void Write32(int at, uint value) => Payload(at, 4).Set32(Offset + at, value);

    /// <summary>Declares which bits of a field the guest may write (0 bits are read-only; the default is all read-only).</summary>
    /// <param name="at">The offset in the capability (2 or more).</param>
    /// <param name="size">The field's width: 1, 2 or 4.</param>
    /// <param name="mask">The writable bits.</param>
    public void SetWritable(int at, int size, uint mask)
    {
        PciConfigBytes config = Payload(at, CheckSize(size));
        for (int i = 0; i < size; i++)
        {
            config.WritableMask(Offset + at + i) = (byte)(mask >> (8 * i));
        }
    }

    /// <summary>Declares which bits of a field the guest clears by writing 1 (status bits the device sets).</summary>
    /// <param name="at">The offset in the capability (2 or more).</param>
    /// <param name="size">The field's width: 1, 2 or 4.</param>
    /// <param name="mask">The write-1-to-clear bits.</param>
    public void SetWriteOneToClear(int at, int size, uint mask)
    {
        PciConfigBytes config = Payload(at, CheckSize(size));
        for (int i = 0; i < size; i++)
        {
            config.WriteOneToClearMask(Offset + at + i) = (byte)(mask >> (8 * i));
        }
    }

    /// <summary>Called once the capability is linked into the list: lay out its fields and masks here.</summary>
    protected virtual void OnAdded()
    {
    }

    /// <summary>
    /// The guest reads inside the capability. <paramref name="value"/> holds what the stored bytes give; change it to
    /// answer otherwise. The access is naturally aligned and may reach past <see cref="Length"/> into the padding
    /// before the next dword (those bytes read 0).
    /// </summary>
    /// <param name="at">The offset of the access in the capability.</param>
    /// <param name="size">1, 2 or 4.</param>
    /// <param name="value">The value returned to the guest (masked to <paramref name="size"/> afterwards).</param>
    protected virtual void OnRead(int at, int size, ref uint value)
    {
    }

    /// <summary>
    /// The guest wrote inside the capability; the stored bytes already hold the write as the masks let it through.
    /// The access is naturally aligned and may reach past <see cref="Length"/> into the padding.
    /// </summary>
    /// <param name="at">The offset of the access in the capability.</param>
    /// <param name="size">1, 2 or 4.</param>
    protected virtual void OnWritten(int at, int size)
    {
    }

    // The SDK's calls into the hooks (the hooks are protected: subclasses override them, nothing else calls them).
    internal void Added() => OnAdded();

    internal void Read(int at, int size, ref uint value) => OnRead(at, size, ref value);

    internal void Written(int at, int size) => OnWritten(at, size);

    /// <summary>Places the capability at <paramref name="offset"/> of <paramref name="config"/> (its header linked already).</summary>
    internal void Place(PciConfigBytes config, int offset)
    {
        _config = config;
        Offset = offset;
        if (Id == PciConfigRegisters.CapabilityVendor)
        {
            config[offset + 2] = (byte)Length;
        }
    }

    private static int CheckSize(int size)
    {
        if (size is not (1 or 2 or 4))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A field is 1, 2 or 4 bytes.");
        }

        return size;
    }

    private PciConfigBytes Bytes(int at, int size)
    {
        PciConfigBytes? config = _config;
        if (config is null)
        {
            ThrowHelper.ThrowInvalidOperation("The capability has not been added to a device yet.");
        }

        if (at < 0 || at > Length - size)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(at), "The field lies outside the capability.");
        }

        return config;
    }

    private PciConfigBytes Payload(int at, int size)
    {
        int first = Id == PciConfigRegisters.CapabilityVendor ? 3 : 2;
        if (at < first)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(at), "The capability's header (id, next, and a vendor capability's length) is the SDK's.");
        }

        return Bytes(at, size);
    }
}
