using IoreqSdk.Abi;

namespace IoreqSdk.Xen;

/// <summary>
/// libxendevicemodel's interrupt DM ops: the level of a PCI INTx line and an ISA IRQ (x86), of an SPI (Arm), and a
/// message interrupt (x86). Xen checks what each architecture accepts; a refusal comes back as its errno.
/// </summary>
internal static class XenInterruptCalls
{
    public static void SetPciIntxLevel(SafeXenDeviceModelHandle deviceModel, ushort domain, PciSbdf device, int intx, bool asserted)
    {
        using var lease = new HandleLease(deviceModel);
        XenErrors.ThrowIfFailed(
            Interop.XenDeviceModel.SetPciIntxLevel(lease.Value, domain, device.Segment, device.Bus, (byte)device.Device, (byte)intx, asserted ? 1u : 0u),
            "xendevicemodel_set_pci_intx_level",
            domain);
    }

    public static void SetIsaIrqLevel(SafeXenDeviceModelHandle deviceModel, ushort domain, int irq, bool asserted)
    {
        using var lease = new HandleLease(deviceModel);
        XenErrors.ThrowIfFailed(Interop.XenDeviceModel.SetIsaIrqLevel(lease.Value, domain, (byte)irq, asserted ? 1u : 0u), "xendevicemodel_set_isa_irq_level", domain);
    }

    public static void SetIrqLevel(SafeXenDeviceModelHandle deviceModel, ushort domain, uint irq, bool asserted)
    {
        using var lease = new HandleLease(deviceModel);
        XenErrors.ThrowIfFailed(Interop.XenDeviceModel.SetIrqLevel(lease.Value, domain, irq, asserted ? 1u : 0u), "xendevicemodel_set_irq_level", domain);
    }

    public static void InjectMsi(SafeXenDeviceModelHandle deviceModel, ushort domain, ulong address, uint data)
    {
        using var lease = new HandleLease(deviceModel);
        XenErrors.ThrowIfFailed(Interop.XenDeviceModel.InjectMsi(lease.Value, domain, address, data), "xendevicemodel_inject_msi", domain);
    }
}
