namespace IoreqSdk.Devices;

/// <summary>
/// A PCI function's configuration space as the dispatcher reaches it (x86 <c>IOREQ_TYPE_PCI_CONFIG</c> requests,
/// or a host bridge's ECAM window).
/// </summary>
public interface IPciConfigSpace
{
    /// <summary>Reads configuration space.</summary>
    /// <param name="register">The byte offset, 0–4095.</param>
    /// <param name="size">1, 2 or 4; the access does not cross a 4-byte boundary.</param>
    /// <returns>The value in the low <paramref name="size"/> bytes.</returns>
    uint ReadConfig(int register, int size);

    /// <summary>Writes configuration space.</summary>
    /// <param name="register">The byte offset, 0–4095.</param>
    /// <param name="size">1, 2 or 4; the access does not cross a 4-byte boundary.</param>
    /// <param name="value">The value, masked to <paramref name="size"/> bytes.</param>
    void WriteConfig(int register, int size, uint value);
}
