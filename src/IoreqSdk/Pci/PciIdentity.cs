namespace IoreqSdk.Pci;

/// <summary>What a PCI function says it is: the read-only identification registers of its type-0 header.</summary>
public sealed class PciIdentity
{
    /// <summary>Vendor ID (offset 0x00).</summary>
    public ushort VendorId { get; init; }

    /// <summary>Device ID (offset 0x02).</summary>
    public ushort DeviceId { get; init; }

    /// <summary>Revision ID (offset 0x08).</summary>
    public byte RevisionId { get; init; }

    /// <summary>Class code: base class, sub-class and programming interface (offsets 0x0B, 0x0A, 0x09), as 0xBBSSPP.</summary>
    public uint ClassCode { get; init; }

    /// <summary>Subsystem vendor ID (offset 0x2C); defaults to <see cref="VendorId"/> when 0.</summary>
    public ushort SubsystemVendorId { get; init; }

    /// <summary>Subsystem ID (offset 0x2E).</summary>
    public ushort SubsystemId { get; init; }

    /// <summary>The INTx pin (offset 0x3D): 0 for none, 1–4 for INTA–INTD.</summary>
    public byte InterruptPin { get; init; }
}
