using System;
using IoreqSdk.Devices;

namespace IoreqSdk.Pci;

/// <summary>
/// A function's BARs: their declaration, the BAR semantics of their registers (only the address bits above the size
/// are writable), and the decoder that, from the configuration bytes, computes what each BAR decodes and returns the
/// change against what is mapped — the device has the host bridge apply it.
/// </summary>
internal sealed class PciBars
{
    private readonly PciConfigBytes _config;
    private readonly PciBar?[] _bars = new PciBar?[7];
    private readonly BarChange[] _changes = new BarChange[7];

    public PciBars(PciConfigBytes config) => _config = config;

    /// <summary>The BARs, by index (6 is the expansion ROM); <see langword="null"/> where none was declared.</summary>
    public ReadOnlySpan<PciBar?> All => _bars;

    /// <summary>Adds a declared BAR and sets its register's read-only type bits.</summary>
    public PciBar Add(PciBar bar)
    {
        _bars[bar.Index] = bar;
        switch (bar.Kind)
        {
            case PciBarKind.Io:
                _config.Set32(bar.Register, 0x1);
                break;
            case PciBarKind.Memory32 or PciBarKind.Memory64:
                _config.Set32(bar.Register, (bar.Kind == PciBarKind.Memory64 ? 0x4u : 0) | (bar.Prefetchable ? 0x8u : 0));
                break;
        }

        return bar;
    }

    /// <summary>
    /// The decoder: what each BAR decodes now against where it is mapped. A change unmaps the BAR from where it is (if
    /// it is mapped) and maps it at <see cref="BarChange.MapAt"/> (if it decodes); BARs that stay put are left out.
    /// </summary>
    /// <param name="command">The command register as decode sees it (0 in D3hot: no decode at all).</param>
    /// <returns>The changes, valid until the next call (no allocation: the buffer is the decoder's).</returns>
    public ReadOnlySpan<BarChange> Changes(ushort command)
    {
        int count = 0;
        foreach (PciBar? bar in _bars)
        {
            if (bar is null)
            {
                continue;
            }

            ulong? wanted = DecodedAddress(bar, command);
            if (wanted != bar.Address)
            {
                _changes[count++] = new BarChange(bar, wanted);
            }
        }

        return _changes.AsSpan(0, count);
    }

    /// <summary>Checks a memory BAR's declaration; its size rounded up to a power of two of at least 16.</summary>
    public ulong CheckMemory(int index, ulong size, bool is64Bit, string deviceName)
    {
        CheckIndex(index, is64Bit ? 2 : 1, deviceName);
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

        return rounded;
    }

    /// <summary>Checks an I/O BAR's declaration; its size rounded up to a power of two of at least 4.</summary>
    public ulong CheckIo(int index, uint size, string deviceName)
    {
        CheckIndex(index, 1, deviceName);
        ulong rounded = RoundUp(size, 4);
        if (rounded > 256)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "An I/O BAR decodes at most 256 ports.");
        }

        return rounded;
    }

    /// <summary>Checks the expansion ROM's size; rounded up to a power of two of at least 2 KiB.</summary>
    public static ulong CheckRom(ulong size)
    {
        if (size > 1UL << 31)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "An expansion ROM decodes at most 2 GiB (its BAR holds address bits 11 to 31).");
        }

        ulong rounded = RoundUp(size, 2048);
        return rounded;
    }

    /// <summary>Refuses an index out of range, or one declared already (a 64-bit BAR takes two).</summary>
    private void CheckIndex(int index, int registers, string deviceName)
    {
        if (index < 0 || index + registers > 6)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(index), "BARs are numbered 0 to 5, and a 64-bit BAR takes two.");
        }

        for (int i = index; i < index + registers; i++)
        {
            if (_bars[i] is not null || (i > 0 && _bars[i - 1]?.Kind == PciBarKind.Memory64))
            {
                ThrowHelper.ThrowInvalidOperation($"BAR {i} of {deviceName} is declared already.");
            }
        }
    }

    /// <summary>The BAR whose region this is.</summary>
    public PciBar Of(DeviceRegion region, string deviceName)
    {
        foreach (PciBar? bar in _bars)
        {
            if (bar is not null && ReferenceEquals(bar.Region, region))
            {
                return bar;
            }
        }

        ThrowHelper.ThrowInvalidOperation($"{region} is not a BAR of {deviceName}.");
        return null;
    }

    /// <summary>Whether a config-space byte belongs to a BAR register (BARs 0-5 and the expansion ROM).</summary>
    public static bool IsBarByte(int offset) =>
        (offset >= PciConfigRegisters.Bar0 && offset < PciConfigRegisters.Bar0 + 24) || (offset >= PciConfigRegisters.ExpansionRom && offset < PciConfigRegisters.ExpansionRom + 4);

    /// <summary>Applies BAR semantics to a register the guest wrote: only the address bits above the size are writable.</summary>
    public void Normalise(int register)
    {
        uint raw = _config.Get32(register);
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

        _config.Set32(register, value);
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

    /// <summary>What a BAR decodes under a command register: nothing while its decode is off or it holds 0 or a sizing pattern.</summary>
    private ulong? DecodedAddress(PciBar bar, ushort command)
    {
        uint low = _config.Get32(bar.Register);
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
                uint high = _config.Get32(bar.Register + 4);
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

    private static ulong RoundUp(ulong size, ulong minimum)
    {
        ulong rounded = minimum;
        while (rounded < size)
        {
            rounded <<= 1;
        }

        return rounded;
    }
}

/// <summary>One BAR's change: unmap it from <see cref="PciBar.Address"/> (when mapped), then map it at <see cref="MapAt"/> (when it decodes).</summary>
internal readonly struct BarChange
{
    public BarChange(PciBar bar, ulong? mapAt)
    {
        Bar = bar;
        MapAt = mapAt;
    }

    public PciBar Bar { get; }

    public ulong? MapAt { get; }
}
