using IoreqSdk.Devices;
using IoreqSdk.Pci;

namespace MyDevice;

/// <summary>
/// A PCI device that checksums a buffer in guest memory. The driver writes the buffer's bus address and length, rings
/// the doorbell and gets an interrupt when the sum is ready. BAR 0, 4 KiB of 32-bit registers:
/// <list type="table">
/// <item><term>0x00 ID</term><description>read-only, <see cref="Identification"/>.</description></item>
/// <item><term>0x04 STATUS</term><description>bit 0 done, bit 1 error (the buffer could not be read); write 1s to clear them, which lowers INTx.</description></item>
/// <item><term>0x08, 0x0C ADDRESS</term><description>the buffer's bus address, low and high halves.</description></item>
/// <item><term>0x10 LENGTH</term><description>its length, at most <see cref="MaxLength"/>.</description></item>
/// <item><term>0x14 DOORBELL</term><description>write 1 to checksum the buffer (ignored while one is running).</description></item>
/// <item><term>0x18 SUM</term><description>the sum of the buffer's bytes, modulo 2^32.</description></item>
/// </list>
/// </summary>
public sealed class ChecksumDevice : PciDevice
{
    /// <summary>What the ID register reads.</summary>
    public const uint Identification = 0xC5C5_0001;

    /// <summary>The longest buffer the device reads: the guest chooses the length, the device bounds it.</summary>
    public const int MaxLength = 4096;

    public const ulong Id = 0x00, Status = 0x04, AddressLow = 0x08, AddressHigh = 0x0C, Length = 0x10, Doorbell = 0x14, Sum = 0x18;
    public const uint StatusDone = 1, StatusError = 2;

    private readonly byte[] _buffer = new byte[MaxLength];
    private readonly Action _checksum;
    private ulong _address;
    private uint _length;
    private uint _status;
    private uint _sum;
    private bool _running;

    public ChecksumDevice()
        : base("checksum", new PciIdentity { VendorId = 0x1234, DeviceId = 0xC5C5, ClassCode = 0xFF0000, InterruptPin = 1 })
    {
        // Registers are 32-bit: other access widths read all-ones and their writes are dropped (the SDK's safe default).
        AddMemoryBar(0, 0x1000, widths: AccessWidths.DWord);
        _checksum = RunChecksum;
    }

    /// <summary>Checksums the device refused (the posted-work queue was full).</summary>
    public long Refused { get; private set; }

    /// <inheritdoc/>
    protected override ulong ReadBar(PciBar bar, ulong offset, int size) => offset switch
    {
        Id => Identification,
        Status => _status,
        AddressLow => (uint)_address,
        AddressHigh => (uint)(_address >> 32),
        Length => _length,
        Sum => _sum,
        _ => 0,
    };

    /// <inheritdoc/>
    protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
    {
        uint written = (uint)value;
        switch (offset)
        {
            case Status:
                _status &= ~written;
                if (_status == 0)
                {
                    SetIntx(false);   // acknowledged: the level-triggered line goes down
                }

                break;
            case AddressLow when !_running:
                _address = (_address & 0xFFFF_FFFF_0000_0000) | written;
                break;
            case AddressHigh when !_running:
                _address = (_address & 0xFFFF_FFFF) | ((ulong)written << 32);
                break;
            case Length when !_running:
                _length = written;
                break;
            case Doorbell when (written & 1) != 0 && !_running:
                // After this request is answered, on the loop (guest memory is reached from the loop only): at most
                // 4 KiB, so microseconds. The queue is bounded: a refusal is answered as a busy device would.
                _running = true;
                if (!Context.TryPost(_checksum))
                {
                    _running = false;
                    Refused++;
                }

                break;
        }
    }

    private void RunChecksum()
    {
        _running = false;

        // The guest wrote the length: never trust it beyond the device's buffer. TryDmaRead refuses without bus mastering
        // and for an address outside guest RAM.
        if (_length > MaxLength || !TryDmaRead(_address, _buffer.AsSpan(0, (int)_length)))
        {
            _status |= StatusError;
        }
        else
        {
            uint sum = 0;
            foreach (byte b in _buffer.AsSpan(0, (int)_length))
            {
                sum += b;
            }

            _sum = sum;
            _status |= StatusDone;
        }

        SignalInterrupt();
    }
}
