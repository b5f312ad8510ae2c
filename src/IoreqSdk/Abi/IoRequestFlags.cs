namespace IoreqSdk.Abi;

/// <summary>
/// The bit layout of byte 30 of <c>ioreq_t</c>, where GCC packs the C bitfields
/// <c>state:4, data_is_ptr:1, dir:1, df:1, _pad1:1</c> from the least significant bit up
/// (measured against the Xen 4.17 headers on x86_64 and aarch64).
/// </summary>
/// <remarks>
/// The state shares its byte with the request's flags, so every update of the state is a
/// read-modify-write that keeps bits 4–7 exactly as they were: the helpers here never disturb a
/// neighbouring bit.
/// </remarks>
public static class IoRequestFlags
{
    /// <summary>The bits of <c>state</c> (bits 0–3).</summary>
    public const byte StateMask = 0x0F;

    /// <summary>The bit number of <c>data_is_ptr</c>.</summary>
    public const int DataIsPointerBit = 4;

    /// <summary>The bit number of <c>dir</c> (1 = read).</summary>
    public const int DirectionBit = 5;

    /// <summary>The bit number of <c>df</c> (x86 direction flag: 1 = addresses step downwards).</summary>
    public const int DirectionFlagBit = 6;

    /// <summary>The bit number of the unused <c>_pad1</c>.</summary>
    public const int PaddingBit = 7;

    /// <summary>The state held in a flags byte.</summary>
    /// <param name="flags">Byte 30 of a request.</param>
    /// <returns>Its low four bits (possibly a value Xen never defines).</returns>
    public static IoreqState GetState(byte flags) => (IoreqState)(flags & StateMask);

    /// <summary>A flags byte with its state replaced and every other bit kept.</summary>
    /// <param name="flags">Byte 30 of a request.</param>
    /// <param name="state">The new state (only its low four bits are used).</param>
    /// <returns>The updated byte.</returns>
    public static byte WithState(byte flags, IoreqState state) =>
        (byte)((flags & ~StateMask) | ((byte)state & StateMask));

    /// <summary>Reads one flag bit.</summary>
    /// <param name="flags">Byte 30 of a request.</param>
    /// <param name="bit">The bit number.</param>
    /// <returns>Whether the bit is set.</returns>
    public static bool GetBit(byte flags, int bit) => ((flags >> bit) & 1) != 0;

    /// <summary>A flags byte with one bit set or cleared and every other bit kept.</summary>
    /// <param name="flags">Byte 30 of a request.</param>
    /// <param name="bit">The bit number.</param>
    /// <param name="value">The new value of the bit.</param>
    /// <returns>The updated byte.</returns>
    public static byte WithBit(byte flags, int bit, bool value) =>
        value ? (byte)(flags | (1 << bit)) : (byte)(flags & ~(1 << bit));
}
