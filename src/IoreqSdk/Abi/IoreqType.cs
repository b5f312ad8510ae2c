namespace IoreqSdk.Abi;

/// <summary>
/// The kind of an I/O request: the <c>type</c> byte of <c>ioreq_t</c> (offset 31) and of
/// <c>buf_ioreq_t</c> (byte 0). Values are Xen's <c>IOREQ_TYPE_*</c> from <c>xen/hvm/ioreq.h</c>.
/// </summary>
/// <remarks>
/// The byte comes from shared memory, so a value outside this list is possible and must be handled
/// (answered, never trusted).
/// </remarks>
public enum IoreqType : byte
{
    /// <summary><c>IOREQ_TYPE_PIO</c>: x86 port I/O; <c>addr</c> is the port.</summary>
    Pio = 0,

    /// <summary><c>IOREQ_TYPE_COPY</c>: memory-mapped I/O; <c>addr</c> is a guest-physical address.</summary>
    Copy = 1,

    /// <summary><c>IOREQ_TYPE_PCI_CONFIG</c>: x86 configuration-space access decoded by Xen from 0xCF8/0xCFC;
    /// <c>addr</c> is <c>(SBDF &lt;&lt; 32) | register</c>.</summary>
    PciConfig = 2,

    /// <summary><c>IOREQ_TYPE_TIMEOFFSET</c>: the guest changed its RTC; <c>data</c> is the signed change in seconds.
    /// Buffered, x86 only.</summary>
    TimeOffset = 7,

    /// <summary><c>IOREQ_TYPE_INVALIDATE</c>: drop every cached mapping of guest RAM, then answer.</summary>
    Invalidate = 8,
}
