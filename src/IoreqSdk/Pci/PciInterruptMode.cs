namespace IoreqSdk.Pci;

/// <summary>How a PCI function's interrupts reach the guest right now, as its driver configured it.</summary>
public enum PciInterruptMode
{
    /// <summary>The INTx pin (or nothing, when the function has no pin).</summary>
    Intx,

    /// <summary>MSI, enabled in the MSI capability.</summary>
    Msi,

    /// <summary>MSI-X, enabled in the MSI-X capability.</summary>
    Msix,
}
