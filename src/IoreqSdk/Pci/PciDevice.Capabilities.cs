using System;
using IoreqSdk.Devices;

namespace IoreqSdk.Pci;

/// <content>The capability list: MSI, MSI-X, PCI Express, power management and vendor-specific capabilities, and
/// capabilities of any id the device lays out itself (<see cref="PciCapability"/>).</content>
public abstract partial class PciDevice
{
    /// <summary>The capability with hooks that owns each byte of the standard capability area (null: none).</summary>
    private readonly PciCapability?[] _capabilityAt = new PciCapability?[256];
    private int _powerManagement;

    /// <summary>
    /// Adds a capability of any id with the layout it declares (in <see cref="PciCapability.OnAdded"/>, or through
    /// its accessors once this returns): read-only, writable and write-1-to-clear bits, and hooks the SDK calls on
    /// the guest's reads and writes inside it.
    /// </summary>
    /// <typeparam name="TCapability">The capability's type.</typeparam>
    /// <param name="capability">The capability, not added to any device yet.</param>
    /// <returns><paramref name="capability"/>, linked (its <see cref="PciCapability.Offset"/> set).</returns>
    protected TCapability AddCapability<TCapability>(TCapability capability)
        where TCapability : PciCapability
    {
        if (capability is null)
        {
            throw new ArgumentNullException(nameof(capability));
        }

        if (capability.IsAdded)
        {
            ThrowHelper.ThrowInvalidOperation("The capability has been added to a device already.");
        }

        int offset = AddCapability(capability.Id, capability.Length);
        capability.Place(_config, offset);
        for (int i = offset; i < offset + capability.Length; i++)
        {
            _capabilityAt[i] = capability;
        }

        capability.Added();
        return capability;
    }

    /// <summary>Adds an MSI capability. Masking and pending bits are owned by the SDK.</summary>
    /// <param name="vectors">1, 2, 4, 8, 16 or 32 vectors.</param>
    /// <param name="is64Bit">64-bit message addresses.</param>
    /// <param name="perVectorMasking">Per-vector mask and pending bits.</param>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddMsiCapability(int vectors = 1, bool is64Bit = true, bool perVectorMasking = true)
    {
        if (_interrupts.Msi is not null || vectors is not (1 or 2 or 4 or 8 or 16 or 32))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(vectors), "One MSI capability with 1, 2, 4, 8, 16 or 32 vectors.");
        }

        _interrupts.Msi = AddCapability(new PciMsi(_interrupts, vectors, is64Bit, perVectorMasking));
        return _interrupts.Msi.Offset;
    }

    /// <summary>
    /// Adds an MSI-X capability whose table and pending-bit array live in one of the device's memory BARs. The SDK
    /// serves the table and PBA, enforces the function mask and per-vector masks, and delivers pending vectors on
    /// unmask; the device's <see cref="ReadBar"/> never sees those offsets.
    /// </summary>
    /// <param name="vectors">1–2048 vectors.</param>
    /// <param name="bar">A memory BAR declared before.</param>
    /// <param name="tableOffset">The table's offset in the BAR (8-byte aligned; 16 bytes per vector).</param>
    /// <param name="pendingOffset">The PBA's offset in the BAR (8-byte aligned).</param>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddMsixCapability(int vectors, PciBar bar, uint tableOffset, uint pendingOffset)
    {
        if (_interrupts.Msix is not null || vectors < 1 || vectors > 2048)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(vectors), "One MSI-X capability with 1 to 2048 vectors.");
        }

        if (bar is null || bar.Kind is not (PciBarKind.Memory32 or PciBarKind.Memory64) || (tableOffset & 7) != 0 || (pendingOffset & 7) != 0
            || tableOffset + ((ulong)vectors * 16) > bar.Size || pendingOffset + ((((ulong)vectors + 63) / 64) * 8) > bar.Size)
        {
            ThrowHelper.ThrowArgument(nameof(bar), "The MSI-X table and PBA must be 8-byte aligned and fit inside a memory BAR.");
        }

        // The PCI specification lets software use aligned DWord and QWord accesses on the table and PBA: the BAR accepts
        // both whatever the device implements (the SDK serves those offsets; elsewhere they are adapted to the BAR's widths).
        bar.Region.Accept(AccessWidths.DWord | AccessWidths.QWord);

        _interrupts.Msix = AddCapability(new PciMsix(_interrupts, vectors, bar.Index, tableOffset, pendingOffset));
        return _interrupts.Msix.Offset;
    }

    /// <summary>Adds a PCI Express capability (version 2) describing an endpoint on a x1 2.5 GT/s link.</summary>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddPciExpressCapability()
    {
        int offset = AddCapability(PciConfigRegisters.CapabilityPciExpress, 0x3C);
        _config.Set16(offset + 2, 0x0002);      // version 2, endpoint
        _config.Writable16(offset + 8, 0x7CFF);    // device control
        _config.WriteOneToClear16(offset + 0xA, 0x000F); // device status errors
        _config.Set32(offset + 0xC, 0x0000_0011);  // link: 2.5 GT/s, x1
        _config.Writable16(offset + 0x10, 0x01C3);  // link control
        _config.Set16(offset + 0x12, 0x0011);    // link status: 2.5 GT/s, x1
        return offset;
    }

    /// <summary>Adds a power-management capability (version 3; D0 and D3hot).</summary>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddPowerManagementCapability()
    {
        if (_powerManagement != 0)
        {
            ThrowHelper.ThrowInvalidOperation("One power-management capability per function.");
        }

        int offset = AddCapability(PciConfigRegisters.CapabilityPowerManagement, 8);
        _powerManagement = offset;
        _config.Set16(offset + 2, 0x0003);       // version 3
        _config.Set16(offset + 4, 0x0008);       // No_Soft_Reset
        _config.Writable16(offset + 4, 0x0003);     // power state
        _config.WriteOneToClear16(offset + 4, 0x8000); // PME status
        return offset;
    }

    /// <summary>Adds a vendor-specific capability with a read-only payload.</summary>
    /// <param name="payload">Up to 250 bytes following the 3-byte header.</param>
    /// <returns>The capability's config-space offset.</returns>
    protected int AddVendorCapability(ReadOnlySpan<byte> payload)
    {
        if (payload.Length > 250)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(payload), "A vendor capability holds at most 250 bytes of payload.");
        }

        int offset = AddCapability(PciConfigRegisters.CapabilityVendor, 3 + payload.Length);
        _config[offset + 2] = (byte)(3 + payload.Length);
        payload.CopyTo(_config.From(offset + 3));
        return offset;
    }

    /// <summary>Adds a vendor-specific capability whose payload has guest-writable bits.</summary>
    /// <param name="payload">Up to 189 bytes following the 3-byte header (id, next, length): the initial values.</param>
    /// <param name="writable">The bits of each payload byte the guest may write (as long as <paramref name="payload"/>).</param>
    /// <returns>The capability, to read what the guest wrote (<see cref="PciCapability.Read32(int)"/> and its siblings, offset 3 being the payload's first byte).</returns>
    protected PciCapability AddVendorCapability(ReadOnlySpan<byte> payload, ReadOnlySpan<byte> writable)
    {
        if (payload.Length > PciCapability.MaxLength - 3 || writable.Length != payload.Length)
        {
            ThrowHelper.ThrowArgument(nameof(writable), "A vendor capability holds at most 189 bytes of payload, with a writable mask of the same length.");
        }

        PciCapability capability = AddCapability(new PciCapability(PciConfigRegisters.CapabilityVendor, 3 + payload.Length));
        for (int i = 0; i < payload.Length; i++)
        {
            capability.Write8(3 + i, payload[i]);
            capability.SetWritable(3 + i, 1, writable[i]);
        }

        return capability;
    }

    /// <summary>
    /// Takes MSI and MSI-X out of the capability list, for platforms that cannot deliver messages (Xen 4.17 on
    /// Arm): the guest's driver then uses INTx.
    /// </summary>
    internal void HideMessageInterrupts()
    {
        _config.UnlinkCapabilities(PciConfigRegisters.CapabilityMsi, PciConfigRegisters.CapabilityMsix);
        _interrupts.HideMessages();

        // Their bytes stay where they were (a guest may still address them) but are inert: no hook runs for them.
        for (int i = 0; i < _capabilityAt.Length; i++)
        {
            if (_capabilityAt[i] is PciMsi or PciMsix)
            {
                _capabilityAt[i] = null;
            }
        }
    }

    /// <summary>
    /// Whether the driver put the function in D3hot (PMCSR power state 3): then it answers configuration accesses
    /// only (PCI Power Management 1.2, 5.4.1), so its BARs do not decode until it is back in D0.
    /// </summary>
    private bool InD3Hot => _powerManagement != 0 && (_config[_powerManagement + 4] & 0x3) == 0x3;

    /// <summary>The capability with hooks at a configuration offset (null outside the standard capability area).</summary>
    private PciCapability? CapabilityAt(int register) =>
        (uint)register < (uint)_capabilityAt.Length ? _capabilityAt[register] : null;

    private int AddCapability(byte id, int length)
    {
        if (IsAttached)
        {
            ThrowHelper.ThrowInvalidOperation("Capabilities are declared before the device joins a server.");
        }

        return _config.AddCapability(id, length);
    }
}
