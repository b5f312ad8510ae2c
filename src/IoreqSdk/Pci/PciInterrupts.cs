using IoreqSdk.Devices;

namespace IoreqSdk.Pci;

/// <summary>
/// How a function interrupts: its INTx line (the level the device drives, and what the guest sees of it once the
/// command register and message interrupts had their say), its MSI and MSI-X capabilities, and the messages they
/// send — memory writes by the function, so only while bus mastering is on.
/// </summary>
internal sealed class PciInterrupts
{
    private readonly PciDevice _device;
    private readonly PciConfigBytes _config;
    private readonly byte _pin;
    private IPciBus? _bus;
    private InterruptLine? _intx;
    private bool _intxLevel;
    private bool _intxDriven;

    public PciInterrupts(PciDevice device, PciConfigBytes config, byte pin)
    {
        _device = device;
        _config = config;
        _pin = pin;
    }

    public PciMsi? Msi { get; set; }

    public PciMsix? Msix { get; set; }

    /// <summary>The level the device drives its INTx line at (what the status register's interrupt bit shows).</summary>
    public bool IntxLevel => _intxLevel;

    /// <summary>The line the bridge gave the INTx pin (none without a pin, or before the function joins a bridge).</summary>
    public InterruptLine? IntxLine => _intx;

    /// <summary>Messages not sent because bus mastering was off.</summary>
    public long RefusedMessages { get; private set; }

    /// <summary>MSI-X or MSI when the driver enabled one, otherwise INTx.</summary>
    public PciInterruptMode Mode =>
        Msix is { Enabled: true } ? PciInterruptMode.Msix : Msi is { Enabled: true } ? PciInterruptMode.Msi : PciInterruptMode.Intx;

    public void Attach(IPciBus bus, InterruptLine? intx)
    {
        _bus = bus;
        _intx = intx;
    }

    public void SetIntx(bool asserted)
    {
        _intxLevel = asserted;
        UpdateIntx();
    }

    /// <summary>Signals a vector by the mode the driver chose; INTx is raised when no message mode is enabled.</summary>
    public void Signal(int vector)
    {
        // MSI and MSI-X state (enables, masks, pending bits) is the event loop's, as the INTx line is.
        Server.RequestLoopThread.ThrowIfCurrent("A PCI interrupt");
        switch (Mode)
        {
            case PciInterruptMode.Msix:
                Msix!.Signal(vector);
                break;
            case PciInterruptMode.Msi:
                Msi!.Signal(vector);
                break;
            default:
                SetIntx(true);
                break;
        }
    }

    /// <summary>A configuration write may have changed INTx gating or the modes (MSI and MSI-X see their own writes through their hooks).</summary>
    public void AfterConfigWrite(int register, int size) => UpdateIntx();

    /// <summary>The platform cannot deliver messages: the capabilities are gone, INTx it is.</summary>
    public void HideMessages()
    {
        Msi = null;
        Msix = null;
    }

    /// <summary>A configuration byte as the guest reads it: the stored byte, with the status register's interrupt bit
    /// shown (MSI's pending bits are its capability's read hook).</summary>
    public byte ReadConfigByte(int offset)
    {
        if (offset == PciConfigRegisters.Status)
        {
            return (byte)(_config[offset] | (_intxLevel ? PciConfigRegisters.StatusInterrupt : 0));
        }

        return _config[offset];
    }

    /// <summary>Issues a message interrupt: a memory write by the function, so only while bus mastering is on.</summary>
    public void SendMessage(ulong address, uint data)
    {
        if ((_config.Get16(PciConfigRegisters.Command) & PciConfigRegisters.CommandBusMaster) == 0)
        {
            RefusedMessages++;
            return;
        }

        _bus?.SendMessage(_device, address, data);
    }

    private void UpdateIntx()
    {
        // A function with MSI or MSI-X enabled must not use INTx (PCI Local Bus 6.8.1.3 / PCIe 7.7.1.2), whatever
        // the device asks for: the line the guest sees stays low until the driver disables messages again.
        bool driven = _intxLevel && _pin != 0 && (_config.Get16(PciConfigRegisters.Command) & PciConfigRegisters.CommandInterruptDisable) == 0
            && Mode == PciInterruptMode.Intx;
        if (driven != _intxDriven)
        {
            _intxDriven = driven;
            _intx?.Set(driven);
        }
    }
}
