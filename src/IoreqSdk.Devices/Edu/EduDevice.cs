using System;
using IoreqSdk.Pci;

namespace IoreqSdk.Devices.Edu;

/// <summary>
/// QEMU's educational PCI device ("edu", 1234:11e8), as its specification (QEMU <c>docs/specs/edu.rst</c>) describes
/// it: a 1 MiB MMIO BAR with an identification register, a liveness check, a factorial unit with a status bit and
/// an optional completion interrupt, an interrupt raise/acknowledge pair, and a DMA engine with a 4 KiB buffer at
/// offset 0x40000. It interrupts through MSI when the driver enables it, INTx otherwise.
/// </summary>
/// <remarks>
/// This is the model of how to write a device with IoreqSdk: declare identity, BARs and capabilities in the
/// constructor; serve registers in <see cref="ReadBar"/>/<see cref="WriteBar"/> and return quickly; run long work
/// off the loop through <c>Context.TryRunOffLoop</c> (the factorial of 0xFFFFFFFF takes seconds: on the loop it would
/// stall every vCPU of the server) and short deferred work through <c>Context.Post</c>; interrupt with <see cref="PciDevice.SignalInterrupt"/>
/// and <see cref="PciDevice.SetIntx"/>; DMA with <see cref="PciDevice.TryDmaRead"/>. Nothing here knows the
/// architecture.
/// </remarks>
public sealed class EduDevice : PciDevice
{
    /// <summary>The identification register: version 1.0 (<c>0xRRrr00ed</c>).</summary>
    public const uint Identification = 0x010000ed;

    /// <summary>Interrupt status bit raised when a factorial completes.</summary>
    public const uint FactorialInterrupt = 0x001;

    /// <summary>Interrupt status bit raised when a DMA transfer completes.</summary>
    public const uint DmaInterrupt = 0x100;

    /// <summary>Where the DMA buffer sits in the device's address space.</summary>
    public const ulong DmaBufferStart = 0x40000;

    /// <summary>The DMA buffer's size.</summary>
    public const int DmaBufferSize = 4096;

    private const uint StatusComputing = 0x01;
    private const uint StatusInterruptOnFactorial = 0x80;
    private const ulong DmaRun = 0x1;
    private const ulong DmaToRam = 0x2;
    private const ulong DmaInterruptWhenDone = 0x4;

    private readonly byte[] _dmaBuffer = new byte[DmaBufferSize];
    private readonly ulong _dmaMask;
    private readonly Action _runDma;
    private uint _liveness;
    private uint _factorial;
    private uint _status;
    private uint _interruptStatus;
    private ulong _dmaSource;
    private ulong _dmaDestination;
    private ulong _dmaCount;
    private ulong _dmaCommand;

    /// <summary>The DMA engine's address width unless told otherwise: 28 bits, QEMU's default <c>dma_mask</c>.</summary>
    public const int DefaultDmaAddressBits = 28;

    /// <summary>
    /// A DMA address width that reaches an Arm64 Xen guest's RAM, which starts at 1 GiB (<c>GUEST_RAM0_BASE</c>) and
    /// ends below 2^40 (Xen's smallest Arm stage-2 input size): a configuration for such guests, not a device rule.
    /// </summary>
    public const int Arm64GuestDmaAddressBits = 40;

    /// <summary>Creates the device.</summary>
    /// <param name="dmaAddressBits">How many address bits the DMA engine drives (the spec's default is 28).</param>
    public EduDevice(int dmaAddressBits = DefaultDmaAddressBits)
        : base("edu", new PciIdentity { VendorId = 0x1234, DeviceId = 0x11e8, RevisionId = 0x10, ClassCode = 0xff0000, InterruptPin = 1 })
    {
        if (dmaAddressBits is < 1 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(dmaAddressBits), dmaAddressBits, "edu's DMA engine drives 1 to 64 address bits.");
        }

        _dmaMask = dmaAddressBits >= 64 ? ulong.MaxValue : (1UL << dmaAddressBits) - 1;
        _runDma = RunDma; // one delegate for every transfer: starting one allocates nothing
        // Every width reaches the device (no SDK splitting or merging): edu defines what 1- and 2-byte accesses do.
        Registers = AddMemoryBar(0, 1 << 20, widths: AccessWidths.All);
        AddMsiCapability(vectors: 1, is64Bit: true, perVectorMasking: false);
    }

    /// <summary>BAR 0: the register file.</summary>
    public PciBar Registers { get; }

    /// <summary>Interrupts the device raised (by INTx or MSI).</summary>
    public long InterruptsRaised { get; private set; }

    /// <summary>Bytes the DMA engine moved.</summary>
    public long DmaBytes { get; private set; }

    /// <summary>DMA transfers refused because they left the device's buffer or bus mastering was off.</summary>
    public long DmaErrors { get; private set; }

    /// <summary>DMA transfers not started because the server could not schedule them (its posted-work queue full, or stopping).</summary>
    public long DmaRefused { get; private set; }

    /// <summary>Factorials not computed because the server refused the work (stopping, or its off-loop queue full).</summary>
    public long FactorialsRefused { get; private set; }

    /// <inheritdoc/>
    protected override ulong ReadBar(PciBar bar, ulong offset, int size)
    {
        if (!IsValidAccess(offset, size))
        {
            return ulong.MaxValue;
        }

        return offset switch
        {
            0x00 => Identification,
            0x04 => _liveness,
            0x08 => _factorial,
            0x20 => _status,
            0x24 => _interruptStatus,
            0x80 => _dmaSource,
            0x88 => _dmaDestination,
            0x90 => _dmaCount,
            0x98 => _dmaCommand,
            _ => ulong.MaxValue,
        };
    }

    /// <inheritdoc/>
    protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
    {
        if (!IsValidAccess(offset, size))
        {
            return;
        }

        switch (offset)
        {
            case 0x04:
                _liveness = ~(uint)value;
                break;
            case 0x08:
                StartFactorial((uint)value);
                break;
            case 0x20:
                _status = (_status & ~StatusInterruptOnFactorial) | ((uint)value & StatusInterruptOnFactorial);
                break;
            case 0x60:
                Raise((uint)value);
                break;
            case 0x64:
                Acknowledge((uint)value);
                break;
            case 0x80 when (_dmaCommand & DmaRun) == 0:
                _dmaSource = value;
                break;
            case 0x88 when (_dmaCommand & DmaRun) == 0:
                _dmaDestination = value;
                break;
            case 0x90 when (_dmaCommand & DmaRun) == 0:
                _dmaCount = value;
                break;
            case 0x98 when (value & DmaRun) != 0 && (_dmaCommand & DmaRun) == 0:
                _dmaCommand = value;

                // After the request is answered, on the loop: at most 4 KiB (the buffer), so microseconds — short
                // enough for the loop, and guest memory is reached from the loop only. The posted-work queue is
                // bounded: when it is full the engine refuses the transfer as a busy device would (run bit cleared,
                // no interrupt), rather than throwing out of the guest's write with the run bit left set for ever.
                if (!Context.TryPost(_runDma))
                {
                    DmaRefused++;
                    _dmaCommand &= ~DmaRun;
                }

                break;
        }
    }

    // Below 0x80 only 4-byte accesses exist; from 0x80 up, 4 or 8. Anything else reads all-ones and writes nothing.
    private static bool IsValidAccess(ulong offset, int size) => size == 4 || (size == 8 && offset >= 0x80);

    private void StartFactorial(uint n)
    {
        if ((_status & StatusComputing) != 0)
        {
            return;
        }

        _factorial = n;
        _status |= StatusComputing;

        // Up to 2^32 multiplications (seconds): off the loop, as QEMU runs it on the device's worker thread. The work
        // sees only its input; the completion applies the result on the loop, where device state lives. The driver
        // polls the status bit (or waits for the interrupt), as with the real device. One factorial at a time (the
        // busy bit), so a guest cannot queue more.
        if (!Context.TryRunOffLoop(token => Factorial(n, token), CompleteFactorial))
        {
            FactorialsRefused++;
            _status &= ~StatusComputing;
        }
    }

    private static uint Factorial(uint n, System.Threading.CancellationToken token)
    {
        uint result = 1;
        for (uint i = n; i > 0; i--)
        {
            result = unchecked(result * i);
            if ((i & 0xF_FFFF) == 0 && token.IsCancellationRequested)
            {
                // The server is stopping: nobody will read the result.
                break;
            }
        }

        return result;
    }

    private void CompleteFactorial(uint result)
    {
        _factorial = result;
        _status &= ~StatusComputing;
        if ((_status & StatusInterruptOnFactorial) != 0)
        {
            Raise(FactorialInterrupt);
        }
    }

    private void RunDma()
    {
        bool toRam = (_dmaCommand & DmaToRam) != 0;
        ulong bufferSide = toRam ? _dmaSource : _dmaDestination;
        ulong ramSide = (toRam ? _dmaDestination : _dmaSource) & _dmaMask;

        // The transfer must lie inside the device's buffer (QEMU only logs this; a device model must refuse it).
        bool inBuffer = bufferSide >= DmaBufferStart && _dmaCount <= DmaBufferSize && bufferSide - DmaBufferStart <= (ulong)DmaBufferSize - _dmaCount;
        if (inBuffer)
        {
            Span<byte> window = _dmaBuffer.AsSpan((int)(bufferSide - DmaBufferStart), (int)_dmaCount);
            bool done = toRam ? TryDmaWrite(ramSide, window) : TryDmaRead(ramSide, window);
            if (done)
            {
                DmaBytes += window.Length;
            }
            else
            {
                DmaErrors++;
            }
        }
        else
        {
            DmaErrors++;
        }

        _dmaCommand &= ~DmaRun;
        if ((_dmaCommand & DmaInterruptWhenDone) != 0)
        {
            Raise(DmaInterrupt);
        }
    }

    private void Raise(uint bits)
    {
        _interruptStatus |= bits;
        if (_interruptStatus != 0)
        {
            InterruptsRaised++;
            SignalInterrupt();
        }
    }

    private void Acknowledge(uint bits)
    {
        _interruptStatus &= ~bits;
        if (_interruptStatus == 0 && InterruptMode == PciInterruptMode.Intx)
        {
            SetIntx(false);
        }
    }
}
