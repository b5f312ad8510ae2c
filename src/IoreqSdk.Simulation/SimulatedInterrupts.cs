using System.Collections.Concurrent;
using System.Collections.Generic;
using IoreqSdk.Abi;

namespace IoreqSdk.Simulation;

/// <summary>What the simulated guest's interrupt controllers observed.</summary>
public sealed class SimulatedInterrupts
{
    private readonly ConcurrentDictionary<(uint Sbdf, int Intx), bool> _intx = new();
    private readonly ConcurrentDictionary<int, bool> _isa = new();
    private readonly ConcurrentDictionary<uint, int> _spiAssertions = new();
    private readonly ConcurrentQueue<(ulong Address, uint Data)> _msis = new();

    internal SimulatedInterrupts(bool intxRedeliversWhileAsserted) => IntxRedeliversWhileAsserted = intxRedeliversWhileAsserted;

    /// <summary>
    /// How the guest takes a PCI INTx line: while it stays asserted the interrupt keeps arriving (x86: a level-triggered
    /// IO-APIC input), or once per assertion (Arm64: Xen 4.17's vGIC injects when the level goes to 1 and ignores 0).
    /// </summary>
    public bool IntxRedeliversWhileAsserted { get; }

    /// <summary>The level of a PCI INTx line (x86).</summary>
    /// <param name="device">The function.</param>
    /// <param name="intx">0–3.</param>
    /// <returns>Whether it is asserted.</returns>
    public bool PciIntx(PciSbdf device, int intx) => _intx.TryGetValue((device.Value, intx), out bool level) && level;

    /// <summary>The level of an ISA IRQ (x86).</summary>
    /// <param name="irq">0–15.</param>
    /// <returns>Whether it is asserted.</returns>
    public bool IsaIrq(int irq) => _isa.TryGetValue(irq, out bool level) && level;

    /// <summary>
    /// How many times an SPI was injected (Arm64). Xen 4.17's vGIC injects on level 1 and ignores level 0, so this
    /// counts assertions, not levels.
    /// </summary>
    /// <param name="spi">The SPI.</param>
    /// <returns>The count.</returns>
    public int SpiInjections(uint spi) => _spiAssertions.TryGetValue(spi, out int count) ? count : 0;

    /// <summary>The MSIs injected so far, in order (x86).</summary>
    public IReadOnlyCollection<(ulong Address, uint Data)> Msis => _msis;

    internal void SetPciIntx(PciSbdf device, int intx, bool asserted) => _intx[(device.Value, intx)] = asserted;

    internal void SetIsaIrq(int irq, bool asserted) => _isa[irq] = asserted;

    internal void SetSpi(uint spi, bool asserted)
    {
        if (asserted)
        {
            _spiAssertions.AddOrUpdate(spi, 1, (_, n) => n + 1);
        }
    }

    internal void AddMsi(ulong address, uint data) => _msis.Enqueue((address, data));
}
