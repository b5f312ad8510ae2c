namespace IoreqSdk.Virtio.Mmio;

/// <summary>
/// The virtio-mmio register block, version 2 (virtio 1.2 §4.2.2, table "MMIO Device Register Layout"): offsets from
/// the device's base. Every register below <see cref="Config"/> is 32 bits wide and accessed only with aligned 32-bit
/// loads and stores; the device-specific configuration space at <see cref="Config"/> takes the width of its fields.
/// </summary>
public static class VirtioMmioRegisters
{
    /// <summary>R: <see cref="MagicValueExpected"/>, "virt" in little-endian ASCII.</summary>
    public const int MagicValue = 0x000;

    /// <summary>R: the transport version, 2 (1 is the legacy interface, which this transport does not offer).</summary>
    public const int Version = 0x004;

    /// <summary>R: the virtio device type id (0: no device here).</summary>
    public const int DeviceId = 0x008;

    /// <summary>R: the subsystem vendor id.</summary>
    public const int VendorId = 0x00C;

    /// <summary>R: 32 of the device's feature bits, the word <see cref="DeviceFeaturesSel"/> selects.</summary>
    public const int DeviceFeatures = 0x010;

    /// <summary>W: which word <see cref="DeviceFeatures"/> shows (0: bits 0–31, 1: bits 32–63).</summary>
    public const int DeviceFeaturesSel = 0x014;

    /// <summary>W: 32 of the feature bits the driver accepts, the word <see cref="DriverFeaturesSel"/> selects.</summary>
    public const int DriverFeatures = 0x020;

    /// <summary>W: which word <see cref="DriverFeatures"/> writes.</summary>
    public const int DriverFeaturesSel = 0x024;

    /// <summary>W: the queue the queue registers below apply to.</summary>
    public const int QueueSel = 0x030;

    /// <summary>R: the selected queue's largest size, 0 when there is no such queue.</summary>
    public const int QueueNumMax = 0x034;

    /// <summary>W: the selected queue's size.</summary>
    public const int QueueNum = 0x038;

    /// <summary>RW: whether the selected queue is ready (written 1 to enable it, 0 to disable it).</summary>
    public const int QueueReady = 0x044;

    /// <summary>W: an available-buffer notification; the value is the queue's index.</summary>
    public const int QueueNotify = 0x050;

    /// <summary>R: why the device interrupted (<see cref="InterruptUsedBuffer"/>, <see cref="InterruptConfigChange"/>).</summary>
    public const int InterruptStatus = 0x060;

    /// <summary>W: the <see cref="InterruptStatus"/> bits the driver has handled.</summary>
    public const int InterruptAck = 0x064;

    /// <summary>RW: the device status (writing 0 resets the device).</summary>
    public const int Status = 0x070;

    /// <summary>W: the low 32 bits of the selected queue's descriptor area.</summary>
    public const int QueueDescLow = 0x080;

    /// <summary>W: the high 32 bits of the selected queue's descriptor area.</summary>
    public const int QueueDescHigh = 0x084;

    /// <summary>W: the low 32 bits of the selected queue's driver area.</summary>
    public const int QueueDriverLow = 0x090;

    /// <summary>W: the high 32 bits of the selected queue's driver area.</summary>
    public const int QueueDriverHigh = 0x094;

    /// <summary>W: the low 32 bits of the selected queue's device area.</summary>
    public const int QueueDeviceLow = 0x0A0;

    /// <summary>W: the high 32 bits of the selected queue's device area.</summary>
    public const int QueueDeviceHigh = 0x0A4;

    /// <summary>W: the shared memory region the four registers after it describe.</summary>
    public const int ShmSel = 0x0AC;

    /// <summary>R: the low 32 bits of the selected shared memory region's length (all-ones: no such region).</summary>
    public const int ShmLenLow = 0x0B0;

    /// <summary>R: the high 32 bits of the selected shared memory region's length.</summary>
    public const int ShmLenHigh = 0x0B4;

    /// <summary>R: the low 32 bits of the selected shared memory region's guest-physical base.</summary>
    public const int ShmBaseLow = 0x0B8;

    /// <summary>R: the high 32 bits of the selected shared memory region's guest-physical base.</summary>
    public const int ShmBaseHigh = 0x0BC;

    /// <summary>RW (with VIRTIO_F_RING_RESET only, which this transport does not offer): reset the selected queue.</summary>
    public const int QueueReset = 0x0C0;

    /// <summary>R: the configuration generation counter.</summary>
    public const int ConfigGeneration = 0x0FC;

    /// <summary>The device-specific configuration space starts here.</summary>
    public const int Config = 0x100;

    /// <summary>The value <see cref="MagicValue"/> reads: 0x74726976 ("virt").</summary>
    public const uint MagicValueExpected = 0x7472_6976;

    /// <summary>The version <see cref="Version"/> reads.</summary>
    public const uint VersionModern = 2;

    /// <summary><see cref="InterruptStatus"/> bit 0: the device used buffers in at least one queue.</summary>
    public const uint InterruptUsedBuffer = 1;

    /// <summary><see cref="InterruptStatus"/> bit 1: the device's configuration changed.</summary>
    public const uint InterruptConfigChange = 2;
}
