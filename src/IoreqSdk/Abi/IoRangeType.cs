namespace IoreqSdk.Abi;

/// <summary>
/// The kind of range an ioreq server claims: the <c>type</c> of <c>struct xen_dm_op_ioreq_server_range</c>,
/// Xen's <c>XEN_DMOP_IO_RANGE_*</c> from <c>xen/hvm/dm_op.h</c>.
/// </summary>
public enum IoRangeType : uint
{
    /// <summary><c>XEN_DMOP_IO_RANGE_PORT</c>: an inclusive range of x86 I/O ports.</summary>
    Port = 0,

    /// <summary><c>XEN_DMOP_IO_RANGE_MEMORY</c>: an inclusive range of guest-physical addresses.</summary>
    Memory = 1,

    /// <summary><c>XEN_DMOP_IO_RANGE_PCI</c>: PCI functions, as encoded SBDF values (see <see cref="PciSbdf"/>).</summary>
    Pci = 2,
}
