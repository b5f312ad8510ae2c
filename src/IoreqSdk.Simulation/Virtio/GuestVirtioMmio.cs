using System;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>
/// A virtio-mmio device (version 2) as a simulated guest's driver reaches it: every access an aligned 32-bit vCPU load
/// or store to the register block (or the configuration field's own width at 0x100), as Linux's <c>virtio_mmio</c>
/// makes them. Creating it probes the block as <c>virtio_mmio</c>'s probe does: the magic value, version 2 (version 1,
/// the legacy interface, is refused here), a device id other than 0.
/// </summary>
/// <remarks>
/// Interrupts are seen as the guest's interrupt controller sees the line, whichever the platform raised: an ISA IRQ
/// while its level is high (x86's IO-APIC redelivers), or an SPI from each injection until <see cref="TakeInterrupts"/>
/// handles it (Xen 4.17's vGIC on Arm64 injects when the level rises and ignores the fall).
/// </remarks>
public sealed class GuestVirtioMmio : GuestVirtioTransport
{
    private readonly SimulatedVcpu _cpu;
    private readonly SimulatedInterrupts _interrupts;
    private int _injectionsTaken;

    /// <summary>Probes the register block at <paramref name="address"/>.</summary>
    /// <param name="xen">The simulated guest.</param>
    /// <param name="address">The block's guest-physical base.</param>
    /// <param name="line">Its interrupt: an ISA IRQ on x86, an SPI on Arm64.</param>
    /// <param name="vcpu">The vCPU to access it from.</param>
    /// <exception cref="InvalidOperationException">No virtio-mmio version 2 device answers there.</exception>
    public GuestVirtioMmio(SimulatedHypervisor xen, ulong address, uint line, int vcpu = 0)
    {
        if (xen is null)
        {
            throw new ArgumentNullException(nameof(xen));
        }

        _cpu = xen.Vcpu(vcpu);
        _interrupts = xen.Interrupts;
        Address = address;
        Line = line;

        uint magic = ReadRegister(R.MagicValue);
        if (magic != R.MagicValueExpected)
        {
            throw new InvalidOperationException(FormattableString.Invariant($"No virtio-mmio device at 0x{address:x}: the magic value reads 0x{magic:x}."));
        }

        Version = ReadRegister(R.Version);
        if (Version != R.VersionModern)
        {
            throw new InvalidOperationException(FormattableString.Invariant($"The virtio-mmio device at 0x{address:x} reports version {Version}; this driver speaks version 2 only."));
        }

        uint id = ReadRegister(R.DeviceId);
        if (id == 0 || id > ushort.MaxValue)
        {
            // Linux skips id 0 (a placeholder block with no device behind it) without an error.
            throw new InvalidOperationException(FormattableString.Invariant($"The virtio-mmio block at 0x{address:x} has no device (device id {id})."));
        }

        DeviceType = (ushort)id;
        VendorId = ReadRegister(R.VendorId);
    }

    /// <summary>The register block's base.</summary>
    public ulong Address { get; }

    /// <summary>The interrupt line's number (ISA IRQ or SPI).</summary>
    public uint Line { get; }

    /// <summary>The version the probe read (2).</summary>
    public uint Version { get; }

    /// <summary>The vendor id the probe read.</summary>
    public uint VendorId { get; }

    /// <inheritdoc/>
    public override ushort DeviceType { get; }

    /// <inheritdoc/>
    public override bool InterruptPending =>
        (Line < 16 && _interrupts.IsaIrq((int)Line)) || _interrupts.SpiInjections(Line) != _injectionsTaken;

    /// <summary>Reads a register as given (for tests that play a careless or hostile driver too).</summary>
    /// <param name="offset">The offset in the block.</param>
    /// <param name="size">The access width.</param>
    /// <returns>The value.</returns>
    public uint ReadRegister(int offset, int size = 4) => (uint)_cpu.ReadMmio(Address + (ulong)offset, size);

    /// <summary>Writes a register as given.</summary>
    /// <param name="offset">The offset in the block.</param>
    /// <param name="value">The value.</param>
    /// <param name="size">The access width.</param>
    public void WriteRegister(int offset, ulong value, int size = 4) => _cpu.WriteMmio(Address + (ulong)offset, size, value);

    /// <inheritdoc/>
    public override byte ReadStatus() => (byte)ReadRegister(R.Status);

    /// <inheritdoc/>
    public override void WriteStatus(byte status) => WriteRegister(R.Status, status);

    /// <inheritdoc/>
    public override ulong ReadDeviceFeatures()
    {
        WriteRegister(R.DeviceFeaturesSel, 1);
        ulong high = ReadRegister(R.DeviceFeatures);
        WriteRegister(R.DeviceFeaturesSel, 0);
        return (high << 32) | ReadRegister(R.DeviceFeatures);
    }

    /// <inheritdoc/>
    public override void WriteDriverFeatures(ulong features)
    {
        WriteRegister(R.DriverFeaturesSel, 1);
        WriteRegister(R.DriverFeatures, features >> 32);
        WriteRegister(R.DriverFeaturesSel, 0);
        WriteRegister(R.DriverFeatures, (uint)features);
    }

    /// <inheritdoc/>
    public override uint ReadConfigGeneration() => ReadRegister(R.ConfigGeneration);

    /// <inheritdoc/>
    public override uint ReadConfig(int offset, int size) => ReadRegister(R.Config + CheckConfig(offset, size), size);

    /// <inheritdoc/>
    public override void WriteConfig(int offset, int size, uint value) => WriteRegister(R.Config + CheckConfig(offset, size), value, size);

    /// <inheritdoc/>
    public override ushort ReadQueueMaxSize(int queue)
    {
        WriteRegister(R.QueueSel, (uint)queue);
        return (ushort)ReadRegister(R.QueueNumMax);
    }

    /// <inheritdoc/>
    public override void ConfigureQueue(int queue, ushort size, ulong descriptorArea, ulong driverArea, ulong deviceArea)
    {
        WriteRegister(R.QueueSel, (uint)queue);
        if (ReadRegister(R.QueueReady) != 0)
        {
            // Linux's vm_setup_vq refuses a queue that is set up already.
            throw new InvalidOperationException($"Queue {queue} is ready already.");
        }

        WriteRegister(R.QueueNum, size);
        WriteRegister(R.QueueDescLow, (uint)descriptorArea);
        WriteRegister(R.QueueDescHigh, descriptorArea >> 32);
        WriteRegister(R.QueueDriverLow, (uint)driverArea);
        WriteRegister(R.QueueDriverHigh, driverArea >> 32);
        WriteRegister(R.QueueDeviceLow, (uint)deviceArea);
        WriteRegister(R.QueueDeviceHigh, deviceArea >> 32);
    }

    /// <inheritdoc/>
    public override void EnableQueue(int queue)
    {
        WriteRegister(R.QueueSel, (uint)queue);
        WriteRegister(R.QueueReady, 1);
    }

    /// <inheritdoc/>
    public override bool IsQueueEnabled(int queue)
    {
        WriteRegister(R.QueueSel, (uint)queue);
        return ReadRegister(R.QueueReady) == 1;
    }

    /// <inheritdoc/>
    public override void Notify(int queue) => WriteRegister(R.QueueNotify, (uint)queue);

    /// <inheritdoc/>
    public override GuestVirtioInterrupts TakeInterrupts()
    {
        // The injection count first: one arriving after the status read is still pending afterwards.
        int injections = _interrupts.SpiInjections(Line);
        uint status = ReadRegister(R.InterruptStatus);
        if (status != 0)
        {
            WriteRegister(R.InterruptAck, status);
        }

        _injectionsTaken = injections;
        return (GuestVirtioInterrupts)(status & (R.InterruptUsedBuffer | R.InterruptConfigChange));
    }

    private static int CheckConfig(int offset, int size)
    {
        if (size is not (1 or 2 or 4) || offset < 0 || offset > 0x100 - size)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), "A configuration access is 1, 2 or 4 bytes inside the block's 0x100 bytes of configuration.");
        }

        return offset;
    }
}
