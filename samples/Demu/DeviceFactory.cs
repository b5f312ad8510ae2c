using System;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Pci;

namespace Demu;

/// <summary>What both runs (simulated and real Xen) do alike: make the chosen device and put it on the bridge.</summary>
internal static class DeviceFactory
{
    /// <summary>The device --device names; the serial device's transmitted bytes go to <paramref name="serialOutput"/>.</summary>
    public static PciDevice Create(DemuSettings settings, Action<byte> serialOutput) =>
        settings.Device == DeviceKind.Edu ? new EduDevice(settings.EduDmaAddressBits) : new PciSerialDevice(serialOutput);

    /// <summary>Adds the device at --bdf; false (with the reason on standard error) when the bridge refuses the slot.</summary>
    public static bool TryAdd(PciHostBridge bridge, PciDevice device, DemuSettings settings)
    {
        try
        {
            bridge.AddDevice(device, settings.Address.Device, settings.Address.Function);
            return true;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // The bridge says why the slot is refused; demu says which option places it.
            settings.Error.WriteLine($"demu: --bdf {settings.Address}: {e.Message} Choose another --bdf.");
            return false;
        }
    }
}
