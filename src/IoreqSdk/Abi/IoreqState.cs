namespace IoreqSdk.Abi;

/// <summary>
/// The 4-bit <c>state</c> of a synchronous request slot (bits 0–3 of byte 30 of <c>ioreq_t</c>):
/// Xen's <c>STATE_*</c> values. The state only ever moves forward within one request; a move
/// backwards, or a value above <see cref="ResponseReady"/>, makes Xen crash the guest.
/// </summary>
public enum IoreqState : byte
{
    /// <summary><c>STATE_IOREQ_NONE</c>: the slot is free (Xen writes it after consuming a response).</summary>
    None = 0,

    /// <summary><c>STATE_IOREQ_READY</c>: Xen published a request; the device model may take it.</summary>
    Ready = 1,

    /// <summary><c>STATE_IOREQ_INPROCESS</c>: the device model has taken the request (optional step).</summary>
    InProcess = 2,

    /// <summary><c>STATE_IORESP_READY</c>: the device model wrote the response; Xen may resume the vCPU.</summary>
    ResponseReady = 3,
}
