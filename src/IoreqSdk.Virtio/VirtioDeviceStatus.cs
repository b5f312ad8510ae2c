using System;

namespace IoreqSdk.Virtio;

/// <summary>
/// The device status field (virtio 1.2 §2.1). The driver sets the bits in order — <see cref="Acknowledge"/>,
/// <see cref="Driver"/>, <see cref="FeaturesOk"/>, <see cref="DriverOk"/> — and only a write of 0 (reset) clears
/// them. <see cref="DeviceNeedsReset"/> is the device's own bit.
/// </summary>
[Flags]
public enum VirtioDeviceStatus : byte
{
    /// <summary>Reset: no bit set.</summary>
    None = 0,

    /// <summary>The guest has found the device and recognised it as a virtio device.</summary>
    Acknowledge = 1,

    /// <summary>The guest knows how to drive the device.</summary>
    Driver = 2,

    /// <summary>The driver is set up and ready to drive the device; the device may use its queues.</summary>
    DriverOk = 4,

    /// <summary>Feature negotiation is complete (set by the driver, kept by the device only if it accepts the features).</summary>
    FeaturesOk = 8,

    /// <summary>The device hit an error it cannot recover from; the driver must reset it.</summary>
    DeviceNeedsReset = 64,

    /// <summary>The driver gave up on the device.</summary>
    Failed = 128,
}
