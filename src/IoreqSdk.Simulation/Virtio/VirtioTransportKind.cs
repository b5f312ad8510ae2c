namespace IoreqSdk.Simulation.Virtio;

/// <summary>How <see cref="SimulatedVirtioGuest"/> exposes a virtio device to its guest.</summary>
public enum VirtioTransportKind
{
    /// <summary>virtio-mmio version 2 (virtio 1.2 §4.2): a platform device, a register block and one interrupt line.</summary>
    Mmio,

    /// <summary>virtio-pci (virtio 1.2 §4.1): a PCI function behind a host bridge (MSI-X, or INTx and the ISR where the platform delivers no messages).</summary>
    Pci,
}
