namespace IoreqSdk.Abi;

/// <summary>
/// How an ioreq server uses the buffered ring: the <c>handle_bufioreq</c> argument of
/// <c>xendevicemodel_create_ioreq_server</c>, Xen's <c>HVM_IOREQSRV_BUFIOREQ_*</c> from <c>xen/hvm/hvm_op.h</c>.
/// </summary>
public enum BufferedIoreqMode
{
    /// <summary><c>HVM_IOREQSRV_BUFIOREQ_OFF</c>: no ring. The only mode Xen accepts on Arm.</summary>
    Off = 0,

    /// <summary><c>HVM_IOREQSRV_BUFIOREQ_LEGACY</c>: a ring whose free-running pointers are never rebased
    /// (unsafe after 2³² entries).</summary>
    Legacy = 1,

    /// <summary><c>HVM_IOREQSRV_BUFIOREQ_ATOMIC</c>: a ring whose pointers Xen rebases atomically; the device model
    /// must advance the read pointer with an atomic add.</summary>
    Atomic = 2,
}
