using IoreqSdk.Hypervisor;

namespace IoreqSdk.Pci;

/// <summary>
/// x86 HVM guests: Xen decodes 0xCF8/0xCFC and sends <c>PCI_CONFIG</c> requests for each function the server claims
/// (QEMU remains server 0 and owns 00:00.0); I/O BARs are real ports; INTx goes through
/// <c>set_pci_intx_level</c>, MSI through <c>inject_msi</c>. BAR addresses come from the guest's firmware
/// (hvmloader on Xen), so the windows only bound what firmware in the simulation assigns.
/// </summary>
public sealed class X86Platform : PciPlatform
{
    /// <inheritdoc/>
    public override GuestArchitecture Architecture => GuestArchitecture.X86;

    /// <inheritdoc/>
    public override PciWindow MemoryWindow => new(0xE000_0000, 0x1000_0000);

    /// <inheritdoc/>
    public override PciWindow PrefetchableWindow => new(0x10_0000_0000, 0x10_0000_0000);

    /// <inheritdoc/>
    public override PciWindow IoWindow => new(0xC000, 0x4000);

    /// <inheritdoc/>
    public override bool SupportsMessageInterrupts => true;
}
