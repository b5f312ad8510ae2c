using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;

namespace IoreqSdk.Pci;

/// <summary>
/// A PCI function: a type-0 configuration header with read-only, read-write and write-1-to-clear bits, BARs with
/// sizing, command-register gating of decode, INTx and bus mastering, and a capability list (MSI, MSI-X, PCI Express,
/// power management, vendor-specific, and capabilities of any id the device lays out itself: <see
/// cref="PciCapability"/>). Subclasses declare BARs and capabilities in their constructor and serve BAR accesses in
/// <see cref="ReadBar"/> and <see cref="WriteBar"/> with BAR-relative offsets. The device never learns the
/// architecture: the host bridge it sits behind maps its BARs, routes its interrupts and carries its configuration
/// accesses.
/// </summary>
public abstract partial class PciDevice : DeviceModel, IPciConfigSpace
{
    /// <summary>The size of configuration space (PCI Express extended space included).</summary>
    public const int ConfigSpaceSize = 4096;

    private readonly PciConfigBytes _config;
    private readonly PciBars _bars;
    private readonly PciInterrupts _interrupts;
    private IPciBus? _bus;

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

        _config = new PciConfigBytes(identity);
        _bars = new PciBars(_config);
        _interrupts = new PciInterrupts(this, _config, identity.InterruptPin);
    }

    /// <summary>The identification registers.</summary>
    public PciIdentity Identity { get; }

    /// <summary>Where the function sits; assigned when it joins a host bridge.</summary>
    public PciSbdf Address { get; internal set; }

    /// <summary>The command register as the guest left it.</summary>
    public ushort Command => _config.Get16(PciConfigRegisters.Command);

    /// <summary>Whether the guest enabled bus mastering, without which the device may not DMA.</summary>
    public bool BusMasterEnabled => (Command & PciConfigRegisters.CommandBusMaster) != 0;

    /// <summary>The BARs, by index (6 is the expansion ROM); <see langword="null"/> where none was declared.</summary>
    public ReadOnlySpan<PciBar?> Bars => _bars.All;

    /// <summary>BAR programmings that could not be decoded because they overlapped another mapping (left unmapped).</summary>
    public long MappingConflicts { get; private set; }

    /// <summary>DMA attempts refused because bus mastering was off.</summary>
    public long RefusedDma { get; private set; }

    /// <summary>
    /// MSI and MSI-X messages not sent because bus mastering was off: a message is a memory write the function
    /// issues, so without bus mastering it is dropped, as on hardware (not held pending: that is what masking is for).
    /// </summary>
    public long RefusedMessages => _interrupts.RefusedMessages;

    /// <summary>How interrupts reach the guest now: MSI-X or MSI when the driver enabled one, otherwise INTx.</summary>
    public PciInterruptMode InterruptMode => _interrupts.Mode;

    /// <summary>Whether the function has an MSI or MSI-X capability.</summary>
    internal bool HasMessageInterrupts => _interrupts.Msi is not null || _interrupts.Msix is not null;

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
            value = (value << 8) | _interrupts.ReadConfigByte(register + i);
        }

        // Capabilities start dword-aligned and accesses are naturally aligned, so an access that touches a capability
        // starts inside it: its first byte names the owner.
        if (CapabilityAt(register) is PciCapability capability)
        {
            capability.Read(register - capability.Offset, size, ref value);
            value &= uint.MaxValue >> (32 - (8 * size));
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

        _config.WriteGuest(register, size, value, _bars);
        AfterConfigWrite(register, size);
    }

    /// <inheritdoc/>
    public sealed override ulong Read(DeviceRegion region, ulong offset, int size)
    {
        PciBar bar = _bars.Of(region, Name);
        if (_interrupts.Msix is PciMsix msix && msix.Bar == bar.Index && msix.TryRead(offset, size, out ulong value))
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
        PciBar bar = _bars.Of(region, Name);
        if (_interrupts.Msix is PciMsix msix && msix.Bar == bar.Index && msix.TryWrite(offset, size, value))
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
        ulong rounded = _bars.CheckMemory(index, size, is64Bit, Name);
        return _bars.Add(new PciBar(index, is64Bit ? PciBarKind.Memory64 : PciBarKind.Memory32, rounded, prefetchable, AddMmioRegion(rounded, null, widths, accepted)));
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
        ulong rounded = _bars.CheckIo(index, size, Name);
        return _bars.Add(new PciBar(index, PciBarKind.Io, rounded, false, AddPortRegion(rounded, null, widths, accepted)));
    }

    /// <summary>Declares the expansion ROM BAR; its contents come from <see cref="RomImage"/>.</summary>
    /// <param name="size">Bytes; rounded up to a power of two of at least 2 KiB.</param>
    /// <returns>The BAR.</returns>
    protected PciBar AddExpansionRom(ulong size)
    {
        ulong rounded = PciBars.CheckRom(size);
        return _bars.Add(new PciBar(6, PciBarKind.ExpansionRom, rounded, false, AddMmioRegion(rounded, null, AccessWidths.All)));
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
        _interrupts.SetIntx(asserted);
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
        _interrupts.Signal(vector);
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
    internal InterruptLine? IntxLine => _interrupts.IntxLine;

    /// <summary>Joins a bus at an address, with the line its INTx pin drives (called by the host bridge).</summary>
    internal void AttachToBus(IPciBus bus, PciSbdf address, InterruptLine? intx)
    {
        if (_bus is not null)
        {
            ThrowHelper.ThrowInvalidOperation($"{Name} already sits behind a host bridge.");
        }

        _bus = bus;
        _interrupts.Attach(bus, intx);
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
            // No hooks (a dump has no side effects), but MSI's pending bits, which are state rather than bytes.
            copy[i] = _interrupts.ReadConfigByte(i);
            if (_interrupts.Msi is PciMsi msi && msi.TryReadPending(i - msi.Offset, out byte pending))
            {
                copy[i] = pending;
            }
        }

        return copy;
    }

    private static bool ValidConfigAccess(int register, int size) =>
        (size is 1 or 2 or 4) && register >= 0 && register + size <= ConfigSpaceSize && (register & (size - 1)) == 0;

    private void AfterConfigWrite(int register, int size)
    {
        _interrupts.AfterConfigWrite(register, size);
        UpdateMappings();
        if (CapabilityAt(register) is PciCapability capability)
        {
            capability.Written(register - capability.Offset, size);
        }

        OnConfigWritten(register, size);
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

    /// <summary>Applies the BAR decoder's changes: the bridge maps each BAR where the guest put it, or says why it cannot
    /// (the BAR then does not decode until it is moved: real hardware's behaviour is undefined, here it is counted).</summary>
    private void UpdateMappings()
    {
        // In D3hot the function decodes no memory or I/O space, whatever the command register says.
        foreach (BarChange change in _bars.Changes(InD3Hot ? (ushort)0 : Command))
        {
            PciBar bar = change.Bar;
            if (bar.Address is not null)
            {
                _bus?.UnmapBar(this, bar);
                bar.Address = null;
            }

            if (change.MapAt is not ulong address)
            {
                continue;
            }

            if (_bus is null || _bus.MapBar(this, bar, address) == RegionMapResult.Mapped)
            {
                bar.Address = address;
            }
            else
            {
                MappingConflicts++;
            }
        }
    }
}
