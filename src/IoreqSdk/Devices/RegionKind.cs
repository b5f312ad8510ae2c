namespace IoreqSdk.Devices;

/// <summary>Which address space a device region lives in.</summary>
public enum RegionKind
{
    /// <summary>Guest-physical memory (MMIO): <c>IOREQ_TYPE_COPY</c> requests.</summary>
    Mmio,

    /// <summary>x86 I/O ports: <c>IOREQ_TYPE_PIO</c> requests (on Arm64 reached through a host bridge's PIO aperture).</summary>
    Port,
}
