namespace IoreqSdk.Pci;

/// <summary>Offsets and bits of the PCI type-0 configuration header and of the capabilities the SDK implements.</summary>
public static class PciConfigRegisters
{
    /// <summary>Vendor ID.</summary>
    public const int VendorId = 0x00;

    /// <summary>Device ID.</summary>
    public const int DeviceId = 0x02;

    /// <summary>Command register.</summary>
    public const int Command = 0x04;

    /// <summary>Status register.</summary>
    public const int Status = 0x06;

    /// <summary>Revision ID; the class code follows at 0x09–0x0B.</summary>
    public const int RevisionId = 0x08;

    /// <summary>Cache line size.</summary>
    public const int CacheLineSize = 0x0C;

    /// <summary>Latency timer.</summary>
    public const int LatencyTimer = 0x0D;

    /// <summary>Header type (bit 7: multi-function).</summary>
    public const int HeaderType = 0x0E;

    /// <summary>BAR 0; BARs 1–5 follow every 4 bytes.</summary>
    public const int Bar0 = 0x10;

    /// <summary>Subsystem vendor ID.</summary>
    public const int SubsystemVendorId = 0x2C;

    /// <summary>Subsystem ID.</summary>
    public const int SubsystemId = 0x2E;

    /// <summary>Expansion ROM BAR.</summary>
    public const int ExpansionRom = 0x30;

    /// <summary>Capabilities pointer.</summary>
    public const int CapabilitiesPointer = 0x34;

    /// <summary>Interrupt line (written by firmware, meaningless to the device).</summary>
    public const int InterruptLine = 0x3C;

    /// <summary>Interrupt pin.</summary>
    public const int InterruptPin = 0x3D;

    /// <summary>Command: I/O space decode.</summary>
    public const ushort CommandIo = 1 << 0;

    /// <summary>Command: memory space decode.</summary>
    public const ushort CommandMemory = 1 << 1;

    /// <summary>Command: bus mastering (DMA).</summary>
    public const ushort CommandBusMaster = 1 << 2;

    /// <summary>Command: INTx disable.</summary>
    public const ushort CommandInterruptDisable = 1 << 10;

    /// <summary>Status: INTx asserted (read-only).</summary>
    public const ushort StatusInterrupt = 1 << 3;

    /// <summary>Status: capabilities list present (read-only).</summary>
    public const ushort StatusCapabilities = 1 << 4;

    /// <summary>Capability ID: power management.</summary>
    public const byte CapabilityPowerManagement = 0x01;

    /// <summary>Capability ID: MSI.</summary>
    public const byte CapabilityMsi = 0x05;

    /// <summary>Capability ID: vendor-specific.</summary>
    public const byte CapabilityVendor = 0x09;

    /// <summary>Capability ID: PCI Express.</summary>
    public const byte CapabilityPciExpress = 0x10;

    /// <summary>Capability ID: MSI-X.</summary>
    public const byte CapabilityMsix = 0x11;
}
