using IoreqSdk.Devices;

namespace IoreqSdk.Pci;

/// <summary>What a <see cref="PciDevice"/> needs from the host bridge it sits behind (implemented by <see cref="PciHostBridge"/>).</summary>
internal interface IPciBus
{
    /// <summary>Whether the platform can deliver message-signalled interrupts.</summary>
    bool MessageInterruptsAvailable { get; }

    /// <summary>Makes a BAR decode at a bus address (I/O addresses go to port space or the PIO aperture), or says why it
    /// cannot: the guest programmed the address, so a conflict is a result to count, not an exception.</summary>
    /// <returns><see cref="RegionMapResult.Mapped"/>, or why the BAR does not decode (it is left unmapped).</returns>
    RegionMapResult MapBar(PciDevice device, PciBar bar, ulong address);

    /// <summary>Stops a BAR decoding.</summary>
    void UnmapBar(PciDevice device, PciBar bar);

    /// <summary>Sends a message-signalled interrupt.</summary>
    void SendMessage(PciDevice device, ulong address, uint data);
}
