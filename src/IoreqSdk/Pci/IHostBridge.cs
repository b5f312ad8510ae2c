using System.Collections.Generic;
using IoreqSdk.Abi;
using IoreqSdk.Platforms;

namespace IoreqSdk.Pci;

/// <summary>
/// A PCI host bridge: one segment, its functions and windows. It hides the architecture from the devices behind it,
/// as a real host bridge hides it from a real PCI card.
/// </summary>
public interface IHostBridge
{
    /// <summary>The PCI segment (domain) the bridge owns.</summary>
    ushort Segment { get; }

    /// <summary>The platform deciding config access, I/O decoding and interrupt delivery.</summary>
    PciPlatform Platform { get; }

    /// <summary>The functions behind the bridge, by address.</summary>
    IReadOnlyDictionary<PciSbdf, PciDevice> Functions { get; }

    /// <summary>Puts a function on bus 0 at a device and function number.</summary>
    /// <param name="device">The function.</param>
    /// <param name="deviceNumber">0–31.</param>
    /// <param name="function">0–7.</param>
    /// <returns>Its address.</returns>
    PciSbdf AddDevice(PciDevice device, int deviceNumber, int function = 0);
}
