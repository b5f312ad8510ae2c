namespace IoreqSdk.Abi;

/// <summary>
/// The <c>addr</c> of an <see cref="IoreqType.PciConfig"/> request: <c>(SBDF &lt;&lt; 32) | register</c>, as Xen's
/// x86 code builds it from a latched 0xCF8 value (<c>arch_ioreq_server_get_type_addr</c>).
/// </summary>
public static class PciConfigAddress
{
    /// <summary>The bit position of the SBDF in the request address.</summary>
    public const int SbdfShift = 32;

    /// <summary>Builds a request address.</summary>
    /// <param name="sbdf">The function.</param>
    /// <param name="register">The configuration-space offset.</param>
    /// <returns>The 64-bit request address.</returns>
    public static ulong Encode(PciSbdf sbdf, uint register) => ((ulong)sbdf.Value << SbdfShift) | register;

    /// <summary>The function named by a request address.</summary>
    /// <param name="address">The request address.</param>
    /// <returns>Its upper 32 bits as an SBDF.</returns>
    public static PciSbdf GetSbdf(ulong address) => PciSbdf.FromValue((uint)(address >> SbdfShift));

    /// <summary>The configuration-space offset named by a request address.</summary>
    /// <param name="address">The request address.</param>
    /// <returns>Its lower 32 bits.</returns>
    public static uint GetRegister(ulong address) => (uint)address;
}
