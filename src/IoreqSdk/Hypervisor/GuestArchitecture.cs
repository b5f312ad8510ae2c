namespace IoreqSdk.Hypervisor;

/// <summary>The architecture of the guests a hypervisor runs; it decides which request types and interrupts exist.</summary>
public enum GuestArchitecture
{
    /// <summary>x86 HVM guests: port I/O, PCI_CONFIG decode, the buffered ring, INTx, ISA IRQs and MSI.</summary>
    X86,

    /// <summary>Arm64 guests: MMIO only, no buffered ring, SPIs through <c>set_irq_level</c>.</summary>
    Arm64,
}
