using System;
using System.Buffers.Binary;
using IoreqSdk.Abi;
using IoreqSdk.Devices;

namespace IoreqSdk.Pci;

/// <summary>
/// A PCI function: a type-0 configuration header with read-only, read-write and write-1-to-clear bits, BARs with
/// sizing, command-register gating of decode, INTx and bus mastering, and a capability list (MSI, MSI-X, PCI Express,
/// power management, vendor-specific). Subclasses declare BARs and capabilities in their constructor and serve BAR
/// accesses in <see cref="ReadBar"/> and <see cref="WriteBar"/> with BAR-relative offsets. The device never learns
/// the architecture: the host bridge it sits behind maps its BARs, routes its interrupts and carries its
/// configuration accesses.
/// </summary>
public abstract partial class PciDevice : DeviceModel, IPciConfigSpace
{
    /// <summary>The size of configuration space (PCI Express extended space included).</summary>
    public const int ConfigSpaceSize = 4096;

    private const int FirstCapability = 0x40;
    private const int StandardHeaderEnd = 0x100;

    private readonly byte[] _config = new byte[ConfigSpaceSize];
    private readonly byte[] _writable = new byte[ConfigSpaceSize];
    private readonly byte[] _writeOneToClear = new byte[ConfigSpaceSize];
    private readonly PciBar?[] _bars = new PciBar?[7];
    private int _nextCapability = FirstCapability;
    private int _lastCapability;
    private IPciBus? _bus;
    private InterruptLine? _intx;
    private bool _intxLine;
    private bool _intxDriven;

    /// <summary>Creates the function.</summary>
    /// <param name="name">A name for logs.</param>
    /// <param name="identity">Its identification registers and INTx pin.</param>
    protected PciDevice(string name, PciIdentity identity)
        : base(name)
    {
        Identity = identity ?? throw new ArgumentNullException(nameof(identity));
        if (identity.InterruptPin > 4)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(identity), "The INTx pin is 0 (none) or 1-4 (INTA-INTD).");
        }

        if (identity.ClassCode > 0xFF_FFFF)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(identity), "The class code is 24 bits: 0xBBSSPP (base class, subclass, programming interface).");
        }

        Set16(PciConfigRegisters.VendorId, identity.VendorId);
        Set16(PciConfigRegisters.DeviceId, identity.DeviceId);
        _config[PciConfigRegisters.RevisionId] = identity.RevisionId;
        _config[0x09] = (byte)identity.ClassCode;
        _config[0x0A] = (byte)(identity.ClassCode >> 8);
        _config[0x0B] = (byte)(identity.ClassCode >> 16);
        Set16(PciConfigRegisters.SubsystemVendorId, identity.SubsystemVendorId != 0 ? identity.SubsystemVendorId : identity.VendorId);
        Set16(PciConfigRegisters.SubsystemId, identity.SubsystemId);
        _config[PciConfigRegisters.InterruptPin] = identity.InterruptPin;

        // Command: I/O, memory, bus master, parity, SERR, INTx disable are writable.
        Writable16(PciConfigRegisters.Command, 0x0547);

        // Status: the error bits (8, 11-15) are write-1-to-clear; interrupt and capability bits are read-only.
        _writeOneToClear[PciConfigRegisters.Status + 1] = 0xF9;
        _writeOneToClear[PciConfigRegisters.Status] = 0x00;
        _writable[PciConfigRegisters.CacheLineSize] = 0xFF;
        _writable[PciConfigRegisters.LatencyTimer] = 0xFF;
        _writable[PciConfigRegisters.InterruptLine] = 0xFF;
    }

    /// <summary>The identification registers.</summary>
    public PciIdentity Identity { get; }

    /// <summary>Where the function sits; assigned when it joins a host bridge.</summary>
    public PciSbdf Address { get; internal set; }

    /// <summary>The command register as the guest left it.</summary>
    public ushort Command => Get16(PciConfigRegisters.Command);

    /// <summary>Whether the guest enabled bus mastering, without which the device may not DMA.</summary>
    public bool BusMasterEnabled => (Command & PciConfigRegisters.CommandBusMaster) != 0;

    /// <summary>The BARs, by index (6 is the expansion ROM); <see langword="null"/> where none was declared.</summary>
    public ReadOnlySpan<PciBar?> Bars => _bars;

    /// <summary>BAR programmings that could not be decoded because they overlapped another mapping (left unmapped).</summary>
    public long MappingConflicts { get; private set; }

    /// <summary>DMA attempts refused because bus mastering was off.</summary>
    public long RefusedDma { get; private set; }

    /// <summary>
    /// MSI and MSI-X messages not sent because bus mastering was off: a message is a memory write the function
    /// issues, so without bus mastering it is dropped, as on hardware (not held pending: that is what masking is for).
    /// </summary>
    public long RefusedMessages { get; private set; }

    /// <summary>How interrupts reach the guest now: MSI-X or MSI when the driver enabled one, otherwise INTx.</summary>
    public PciInterruptMode InterruptMode =>
        _msix is { Enabled: true } ? PciInterruptMode.Msix : _msi is { Enabled: true } ? PciInterruptMode.Msi : PciInterruptMode.Intx;

    /// <summary>Whether the function has an MSI or MSI-X capability.</summary>
    internal bool HasMessageInterrupts => _msi is not null || _msix is not null;

    /// <inheritdoc/>
    public uint ReadConfig(int register, int size)
    {
        if (!ValidConfigAccess(register, size))
        {
            return uint.MaxValue;
        }

        uint value = 0;
        for (int i = size - 1; i >= 0; i--)
        {
            value = (value << 8) | ConfigByte(register + i);
        }

        return value;
    }

    /// <inheritdoc/>
    public void WriteConfig(int register, int size, uint value)
    {
        if (!ValidConfigAccess(register, size))
        {
            return;
        }

        bool touchesBars = false;
        for (int i = 0; i < size; i++)
        {
            int offset = register + i;
            byte b = (byte)(value >> (8 * i));
            if (IsBarByte(offset))
            {
                // BARs are whole registers: assemble the new dword and apply BAR semantics below.
                _config[offset] = b;
                touchesBars = true;
                continue;
            }

            byte old = _config[offset];
            byte updated = (byte)((old & ~_writable[offset]) | (b & _writable[offset]));
            updated &= (byte)~(b & _writeOneToClear[offset]);
            _config[offset] = updated;
        }

        if (touchesBars)
        {
            for (int reg = register & ~3; reg < register + size; reg += 4)
            {
                if (IsBarByte(reg))
                {
                    NormaliseBarRegister(reg);
                }
            }
        }

        AfterConfigWrite(register, size);
    }

    /// <inheritdoc/>
    public sealed override ulong Read(DeviceRegion region, ulong offset, int size)
    {
        PciBar bar = BarOf(region);
        if (_msix is not null && _msix.Bar == bar.Index && _msix.TryRead(offset, size, out ulong value))
        {
            return value;
        }

        if (bar.Kind == PciBarKind.ExpansionRom)
        {
            return ReadRom(offset, size);
        }

        return ReadBar(bar, offset, size);
    }

    /// <inheritdoc/>
    public sealed override void Write(DeviceRegion region, ulong offset, int size, ulong value)
    {
        PciBar bar = BarOf(region);
        if (_msix is not null && _msix.Bar == bar.Index && _msix.TryWrite(offset, size, value))
        {
            return;
        }

        if (bar.Kind != PciBarKind.ExpansionRom)
        {
            WriteBar(bar, offset, size, value);
        }
    }

    /// <summary>Serves a read of a BAR.</summary>
    /// <param name="bar">The BAR.</param>
    /// <param name="offset">The offset from the BAR's start.</param>
    /// <param name="size">A width the BAR's region declared.</param>
    /// <returns>The value.</returns>
    protected abstract ulong ReadBar(PciBar bar, ulong offset, int size);

    /// <summary>Serves a write to a BAR.</summary>
    /// <param name="bar">The BAR.</param>
    /// <param name="offset">The offset from the BAR's start.</param>
    /// <param name="size">A width the BAR's region declared.</param>
    /// <param name="value">The value, masked to the width.</param>
    protected abstract void WriteBar(PciBar bar, ulong offset, int size, ulong value);

    /// <summary>The expansion ROM's contents (empty: reads of the ROM return all-ones).</summary>
    protected virtual ReadOnlySpan<byte> RomImage => default;

    /// <summary>Called after every configuration write, once the SDK applied it (decode, BARs, capabilities).</summary>
    /// <param name="register">The first register written.</param>
    /// <param name="size">The width.</param>
    protected virtual void OnConfigWritten(int register, int size)
    {
    }

    /// <summary>Declares a memory BAR.</summary>
    /// <param name="index">0–5 (a 64-bit BAR uses <paramref name="index"/> and the next).</param>
    /// <param name="size">Bytes; rounded up to a power of two of at least 16.</param>
    /// <param name="is64Bit">A 64-bit BAR (a register pair).</param>
    /// <param name="prefetchable">Marks the BAR prefetchable.</param>
    /// <param name="widths">The access widths <see cref="ReadBar"/> and <see cref="WriteBar"/> implement.</param>
    /// <param name="accepted">The widths a guest may use; <see cref="AccessWidths.None"/> (the default, and safe)
    /// means <paramref name="widths"/> alone: others read all-ones and writes of them are dropped. See
    /// <see cref="DeviceRegion.AcceptedWidths"/> for the adaptation of accepted widths the BAR does not implement.</param>
    /// <returns>The BAR.</returns>
    protected PciBar AddMemoryBar(int index, ulong size, bool is64Bit = false, bool prefetchable = false, AccessWidths widths = AccessWidths.All, AccessWidths accepted = AccessWidths.None)
    {
        CheckBarIndex(index, is64Bit ? 2 : 1);
        if (size > 1UL << 63)
        {
            // Past 2^63 no power of two is left to round up to (and no address for the BAR to decode at).
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A 64-bit memory BAR decodes at most 2^63 bytes.");
        }

        ulong rounded = RoundUp(size, 16);
        if (!is64Bit && rounded > 1UL << 31)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A 32-bit memory BAR decodes at most 2 GiB.");
        }

        var bar = new PciBar(index, is64Bit ? PciBarKind.Memory64 : PciBarKind.Memory32, rounded, prefetchable, AddMmioRegion(rounded, null, widths, accepted));
        _bars[index] = bar;
        uint flags = (is64Bit ? 0x4u : 0) | (prefetchable ? 0x8u : 0);
        Set32(bar.Register, flags);
        if (is64Bit)
        {
            _bars[index + 1] = null;
        }

        return bar;
    }

    /// <summary>Declares an I/O BAR.</summary>
    /// <param name="index">0–5.</param>
    /// <param name="size">Ports; rounded up to a power of two of at least 4, at most 256.</param>
    /// <param name="widths">The access widths the BAR's handlers implement.</param>
    /// <param name="accepted">The widths a guest may use; <see cref="AccessWidths.None"/> (the default) means
    /// <paramref name="widths"/> alone. See <see cref="AddMemoryBar"/>.</param>
    /// <returns>The BAR.</returns>
    protected PciBar AddIoBar(int index, uint size, AccessWidths widths = AccessWidths.Byte | AccessWidths.Word | AccessWidths.DWord, AccessWidths accepted = AccessWidths.None)
    {
        CheckBarIndex(index, 1);
        ulong rounded = RoundUp(size, 4);
        if (rounded > 256)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "An I/O BAR decodes at most 256 ports.");
        }

        var bar = new PciBar(index, PciBarKind.Io, rounded, false, AddPortRegion(rounded, null, widths, accepted));
        _bars[index] = bar;
        Set32(bar.Register, 0x1);
        return bar;
    }

    /// <summary>Declares the expansion ROM BAR; its contents come from <see cref="RomImage"/>.</summary>
    /// <param name="size">Bytes; rounded up to a power of two of at least 2 KiB.</param>
    /// <returns>The BAR.</returns>
    protected PciBar AddExpansionRom(ulong size)
    {
        if (size > 1UL << 31)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "An expansion ROM decodes at most 2 GiB (its BAR holds address bits 11 to 31).");
        }

        ulong rounded = RoundUp(size, 2048);
        var bar = new PciBar(6, PciBarKind.ExpansionRom, rounded, false, AddMmioRegion(rounded, null, AccessWidths.All));
        _bars[6] = bar;
        return bar;
    }

    /// <summary>
    /// Drives the INTx line (level-triggered: raise it while the device has something to report, lower it when the
    /// driver acknowledged). The command register's INTx-disable bit gates what the guest sees; the status
    /// register's interrupt bit shows the line either way.
    /// </summary>
    /// <param name="asserted">The line's level.</param>
    /// <remarks>On the event loop only while the server runs (the line's state is device state).</remarks>
    protected void SetIntx(bool asserted)
    {
        ThrowIfOffLoop("PciDevice.SetIntx");
        _intxLine = asserted;
        UpdateIntx();
    }

    /// <summary>
    /// Signals vector <paramref name="vector"/> the way the driver set the function up: an MSI-X or MSI message
    /// (held pending while masked, delivered on unmask), or, when neither is enabled, the INTx line is raised — the
    /// device lowers it with <see cref="SetIntx"/> once the driver acknowledged.
    /// </summary>
    /// <param name="vector">The vector (0 for single-vector devices).</param>
    /// <remarks>On the event loop only while the server runs: it reads and updates the MSI/MSI-X masking and pending
    /// state the guest changes through config space and the table. From another thread, Post it.</remarks>
    protected void SignalInterrupt(int vector = 0)
    {
        ThrowIfOffLoop("PciDevice.SignalInterrupt");
        switch (InterruptMode)
        {
            case PciInterruptMode.Msix:
                _msix!.Signal(vector);
                break;
            case PciInterruptMode.Msi:
                _msi!.Signal(vector);
                break;
            default:
                SetIntx(true);
                break;
        }
    }

    /// <summary>Reads guest memory as bus-master DMA; refused (and counted) while bus mastering is off. On the event
    /// loop only (<see cref="IDeviceContext.Memory"/> throws <see cref="InvalidOperationException"/> elsewhere).</summary>
    /// <param name="address">The bus address.</param>
    /// <param name="destination">Where to copy.</param>
    /// <returns>Whether the transfer happened.</returns>
    protected bool TryDmaRead(ulong address, Span<byte> destination)
    {
        if (!BusMasterEnabled)
        {
            RefusedDma++;
            return false;
        }

        return Context.Memory.TryRead(address, destination);
    }

    /// <summary>Writes guest memory as bus-master DMA; refused (and counted) while bus mastering is off. On the event
    /// loop only (<see cref="IDeviceContext.Memory"/> throws <see cref="InvalidOperationException"/> elsewhere).</summary>
    /// <param name="address">The bus address.</param>
    /// <param name="source">What to copy.</param>
    /// <returns>Whether the transfer happened.</returns>
    protected bool TryDmaWrite(ulong address, ReadOnlySpan<byte> source)
    {
        if (!BusMasterEnabled)
        {
            RefusedDma++;
            return false;
        }

        return Context.Memory.TryWrite(address, source);
    }

    private void ThrowIfOffLoop(string what)
    {
        if (IsAttached && Context is ILoopAffinity loop)
        {
            loop.ThrowIfOffLoop(what);
        }
    }

    /// <summary>The line the bridge gave the INTx pin (none without a pin, or before the function joins a bridge).</summary>
    internal InterruptLine? IntxLine => _intx;

    /// <summary>Joins a bus at an address, with the line its INTx pin drives (called by the host bridge).</summary>
    internal void AttachToBus(IPciBus bus, PciSbdf address, InterruptLine? intx)
    {
        if (_bus is not null)
        {
            ThrowHelper.ThrowInvalidOperation($"{Name} already sits behind a host bridge.");
        }

        _bus = bus;
        _intx = intx;
        Address = address;
    }

    /// <summary>Declares the function multi-function (bit 7 of the header type), for function 0 of a multi-function device.</summary>
    internal void SetMultiFunction(bool value) =>
        _config[PciConfigRegisters.HeaderType] = (byte)((_config[PciConfigRegisters.HeaderType] & 0x7F) | (value ? 0x80 : 0));

    /// <summary>The configuration space as the guest would read it, for dumps.</summary>
    internal byte[] SnapshotConfig()
    {
        var copy = new byte[ConfigSpaceSize];
        for (int i = 0; i < ConfigSpaceSize; i++)
        {
            copy[i] = ConfigByte(i);
        }

        return copy;
    }

    private static bool ValidConfigAccess(int register, int size) =>
        (size is 1 or 2 or 4) && register >= 0 && register + size <= ConfigSpaceSize && (register & (size - 1)) == 0;

    private static ulong RoundUp(ulong size, ulong minimum)
    {
        ulong rounded = minimum;
        while (rounded < size)
        {
            rounded <<= 1;
        }

        return rounded;
    }

    private byte ConfigByte(int offset)
    {
        if (offset == PciConfigRegisters.Status)
        {
            return (byte)(_config[offset] | (_intxLine ? PciConfigRegisters.StatusInterrupt : 0));
        }

        if (_msi is not null && _msi.TryReadByte(offset, out byte msiByte))
        {
            return msiByte;
        }

        return _config[offset];
    }

    private void AfterConfigWrite(int register, int size)
    {
        UpdateIntx();
        _msi?.AfterConfigWrite(register, size);
        _msix?.AfterConfigWrite(register, size);
        UpdateMappings();
        OnConfigWritten(register, size);
    }

    private PciBar BarOf(DeviceRegion region)
    {
        foreach (PciBar? bar in _bars)
        {
            if (bar is not null && ReferenceEquals(bar.Region, region))
            {
                return bar;
            }
        }

        ThrowHelper.ThrowInvalidOperation($"{region} is not a BAR of {Name}.");
        return null;
    }

    private ulong ReadRom(ulong offset, int size)
    {
        ReadOnlySpan<byte> rom = RomImage;
        ulong value = 0;
        for (int i = size - 1; i >= 0; i--)
        {
            ulong at = offset + (ulong)i;
            value = (value << 8) | (at < (ulong)rom.Length ? rom[(int)at] : (byte)0xFF);
        }

        return value;
    }

    private void UpdateIntx()
    {
        // A function with MSI or MSI-X enabled must not use INTx (PCI Local Bus 6.8.1.3 / PCIe 7.7.1.2), whatever
        // the device asks for: the line the guest sees stays low until the driver disables messages again.
        bool driven = _intxLine && Identity.InterruptPin != 0 && (Command & PciConfigRegisters.CommandInterruptDisable) == 0
            && InterruptMode == PciInterruptMode.Intx;
        if (driven != _intxDriven)
        {
            _intxDriven = driven;
            _intx?.Set(driven);
        }
    }

    private void CheckBarIndex(int index, int registers)
    {
        if (index < 0 || index + registers > 6)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(index), "BARs are numbered 0 to 5, and a 64-bit BAR takes two.");
        }

        for (int i = index; i < index + registers; i++)
        {
            if (_bars[i] is not null || (i > 0 && _bars[i - 1]?.Kind == PciBarKind.Memory64))
            {
                ThrowHelper.ThrowInvalidOperation($"BAR {i} of {Name} is declared already.");
            }
        }
    }

    private static bool IsBarByte(int offset) =>
        (offset >= PciConfigRegisters.Bar0 && offset < PciConfigRegisters.Bar0 + 24) || (offset >= PciConfigRegisters.ExpansionRom && offset < PciConfigRegisters.ExpansionRom + 4);

    /// <summary>Applies BAR semantics to a register the guest wrote: only the address bits above the size are writable.</summary>
    private void NormaliseBarRegister(int register)
    {
        uint raw = Get32(register);
        (PciBar? bar, bool high) = BarAtRegister(register);
        uint value;
        if (bar is null)
        {
            value = 0;
        }
        else if (high)
        {
            value = raw & (uint)(~(bar.Size - 1) >> 32);
        }
        else
        {
            value = bar.Kind switch
            {
                PciBarKind.Io => (raw & ~(uint)(bar.Size - 1) & 0xFFFF_FFFC) | 0x1,
                PciBarKind.ExpansionRom => raw & ((~(uint)(bar.Size - 1) & 0xFFFF_F800) | 0x1),
                _ => (raw & (uint)~(bar.Size - 1) & 0xFFFF_FFF0) | (bar.Kind == PciBarKind.Memory64 ? 0x4u : 0) | (bar.Prefetchable ? 0x8u : 0),
            };
        }

        Set32(register, value);
    }

    private (PciBar? Bar, bool High) BarAtRegister(int register)
    {
        if (register == PciConfigRegisters.ExpansionRom)
        {
            return (_bars[6], false);
        }

        int index = (register - PciConfigRegisters.Bar0) / 4;
        if (_bars[index] is PciBar bar)
        {
            return (bar, false);
        }

        return index > 0 && _bars[index - 1] is { Kind: PciBarKind.Memory64 } low ? (low, true) : (null, false);
    }

    /// <summary>What a BAR decodes now: nothing while its decode is off or it holds 0 or a sizing pattern.</summary>
    private ulong? DecodedAddress(PciBar bar)
    {
        // In D3hot the function decodes no memory or I/O space, whatever the command register says.
        ushort command = InD3Hot ? (ushort)0 : Command;
        uint low = Get32(bar.Register);
        switch (bar.Kind)
        {
            case PciBarKind.Io:
            {
                uint mask = ~(uint)(bar.Size - 1) & 0xFFFF_FFFC;
                uint address = low & 0xFFFF_FFFC;
                return (command & PciConfigRegisters.CommandIo) == 0 || address == 0 || address == mask || address > 0xFFFF ? null : address;
            }

            case PciBarKind.ExpansionRom:
            {
                uint mask = ~(uint)(bar.Size - 1) & 0xFFFF_F800;
                uint address = low & 0xFFFF_F800;
                return (command & PciConfigRegisters.CommandMemory) == 0 || (low & 1) == 0 || address == 0 || address == mask ? null : address;
            }

            case PciBarKind.Memory32:
            {
                uint mask = (uint)~(bar.Size - 1) & 0xFFFF_FFF0;
                uint address = low & 0xFFFF_FFF0;
                return (command & PciConfigRegisters.CommandMemory) == 0 || address == 0 || address == mask ? null : address;
            }

            default:
            {
                uint high = Get32(bar.Register + 4);
                uint lowMask = (uint)~(bar.Size - 1) & 0xFFFF_FFF0;
                uint highMask = (uint)(~(bar.Size - 1) >> 32);
                ulong address = ((ulong)high << 32) | (low & 0xFFFF_FFF0);

                // A sizing probe in progress: the high half all-ones in its writable bits (an address in the top
                // 4 GiB of the 64-bit space, beyond any guest's physical address width), or the low half all-ones
                // while the high half is 0 (the 32-bit view of a probe, the same rule as a 32-bit BAR). A low half
                // all-ones under any other high half is a real address (a 1 MiB BAR at 0x1_FFF0_0000) and decodes.
                bool lowSizing = lowMask != 0 && (low & lowMask) == lowMask;
                bool sizing = (high & highMask) == highMask || (lowSizing && high == 0);
                return (command & PciConfigRegisters.CommandMemory) == 0 || address == 0 || sizing ? null : address;
            }
        }
    }

    private void UpdateMappings()
    {
        foreach (PciBar? bar in _bars)
        {
            if (bar is null)
            {
                continue;
            }

            ulong? wanted = DecodedAddress(bar);
            if (wanted == bar.Address)
            {
                continue;
            }

            if (bar.Address is not null)
            {
                _bus?.UnmapBar(this, bar);
                bar.Address = null;
            }

            if (wanted is ulong address && _bus is not null)
            {
                try
                {
                    _bus.MapBar(this, bar, address);
                    bar.Address = address;
                }
                catch (Exception e) when (e is InvalidOperationException or ArgumentException or Hypervisor.HypervisorException)
                {
                    // The guest programmed a BAR over another mapping (or out of range): real hardware's behaviour
                    // is undefined; here the BAR simply does not decode until it is moved.
                    MappingConflicts++;
                }
            }
            else if (wanted is ulong unattached)
            {
                bar.Address = unattached;
            }
        }
    }

    private ushort Get16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_config.AsSpan(offset));

    private uint Get32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_config.AsSpan(offset));

    private void Set16(int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(_config.AsSpan(offset), value);

    private void Set32(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(offset), value);

    private void Writable16(int offset, ushort mask) => BinaryPrimitives.WriteUInt16LittleEndian(_writable.AsSpan(offset), mask);
}
