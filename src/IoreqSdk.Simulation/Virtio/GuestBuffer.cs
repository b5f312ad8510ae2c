namespace IoreqSdk.Simulation.Virtio;

/// <summary>One element of a buffer a simulated guest driver posts: guest memory the device reads, or writes.</summary>
public readonly struct GuestBuffer
{
    /// <summary>Describes an element.</summary>
    /// <param name="address">Its guest-physical address.</param>
    /// <param name="length">Its length in bytes.</param>
    /// <param name="deviceWritable">Whether the device writes it (otherwise the device reads it).</param>
    public GuestBuffer(ulong address, uint length, bool deviceWritable)
    {
        Address = address;
        Length = length;
        DeviceWritable = deviceWritable;
    }

    /// <summary>The guest-physical address.</summary>
    public ulong Address { get; }

    /// <summary>The length in bytes.</summary>
    public uint Length { get; }

    /// <summary>Whether the device writes the element.</summary>
    public bool DeviceWritable { get; }
}
