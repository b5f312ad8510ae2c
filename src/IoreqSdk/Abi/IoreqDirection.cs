namespace IoreqSdk.Abi;

/// <summary>The direction bit of a request (bit 5 of byte 30 of <c>ioreq_t</c>, bit 9 of <c>buf_ioreq_t</c>).</summary>
public enum IoreqDirection : byte
{
    /// <summary><c>IOREQ_WRITE</c>: the guest writes to the device.</summary>
    Write = 0,

    /// <summary><c>IOREQ_READ</c>: the guest reads from the device.</summary>
    Read = 1,
}
