using System;
using IoreqSdk.Memory;

namespace IoreqSdk.Simulation.Virtio;

/// <summary>
/// The driver side of a virtqueue in a simulated guest: what a test needs from either layout
/// (<see cref="GuestSplitVirtqueue"/>, <see cref="GuestPackedVirtqueue"/>) to drive a virtio device as Linux would.
/// </summary>
public abstract class GuestVirtqueue
{
    private protected GuestVirtqueue(IGuestMemory memory, ushort size, ulong descriptorArea, ulong driverArea, ulong deviceArea)
    {
        if (memory is null)
        {
            ThrowHelper.ThrowArgument(nameof(memory), "Guest memory is required.");
        }

        if (size == 0 || size > 32768)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(size), "A queue's size is 1 to 32768.");
        }

        Memory = memory;
        Size = size;
        DescriptorArea = descriptorArea;
        DriverArea = driverArea;
        DeviceArea = deviceArea;
    }

    /// <summary>The queue size.</summary>
    public ushort Size { get; }

    /// <summary>The descriptor table (split) or ring (packed).</summary>
    public ulong DescriptorArea { get; }

    /// <summary>The available ring (split) or driver event suppression structure (packed).</summary>
    public ulong DriverArea { get; }

    /// <summary>The used ring (split) or device event suppression structure (packed).</summary>
    public ulong DeviceArea { get; }

    private protected IGuestMemory Memory { get; }

    /// <summary>Posts a buffer as direct descriptors (list the device-readable elements first).</summary>
    /// <param name="buffer">The elements, in order.</param>
    /// <returns>The id the used ring will return for it.</returns>
    public abstract ushort Post(ReadOnlySpan<GuestBuffer> buffer);

    /// <summary>Posts a buffer as one indirect descriptor whose table the driver writes at <paramref name="table"/> (16-aligned guest RAM).</summary>
    /// <param name="table">Where to write the indirect table.</param>
    /// <param name="buffer">The elements, in order.</param>
    /// <returns>The id the used ring will return for it.</returns>
    public abstract ushort PostIndirect(ulong table, ReadOnlySpan<GuestBuffer> buffer);

    /// <summary>Linux's kick decision: whether what was posted since the last call needs an available-buffer notification.</summary>
    /// <returns>Whether to notify the device.</returns>
    public abstract bool KickPrepare();

    /// <summary>Takes the next used buffer, if the device returned one, and frees what it held.</summary>
    /// <param name="id">The returned id.</param>
    /// <param name="length">The bytes the device says it wrote.</param>
    /// <returns>Whether a used buffer was there.</returns>
    public abstract bool TryTakeUsed(out ushort id, out uint length);
}
