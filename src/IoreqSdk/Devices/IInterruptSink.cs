using IoreqSdk.Abi;

namespace IoreqSdk.Devices;

/// <summary>Interrupt delivery to one guest. Which calls exist depends on the architecture (see each member).</summary>
public interface IInterruptSink
{
    /// <summary>Sets a PCI INTx line (x86).</summary>
    /// <param name="device">The function.</param>
    /// <param name="intx">0–3 for INTA–INTD.</param>
    /// <param name="asserted">The level.</param>
    void SetPciIntxLevel(PciSbdf device, int intx, bool asserted);

    /// <summary>Sets an ISA IRQ line (x86).</summary>
    /// <param name="irq">0–15.</param>
    /// <param name="asserted">The level.</param>
    void SetIsaIrqLevel(int irq, bool asserted);

    /// <summary>Sets an interrupt by number (Arm64 SPIs, 32 and up).</summary>
    /// <param name="irq">The interrupt.</param>
    /// <param name="asserted">The level.</param>
    void SetIrqLevel(uint irq, bool asserted);

    /// <summary>Sends a message-signalled interrupt (x86).</summary>
    /// <param name="address">The message address.</param>
    /// <param name="data">The message data.</param>
    void InjectMsi(ulong address, uint data);
}
