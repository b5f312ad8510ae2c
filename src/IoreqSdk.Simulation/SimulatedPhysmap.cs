using System;
using System.Collections.Generic;
using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Simulation;

/// <summary>
/// The guest's RAM and its physmap as <c>xenforeignmemory_map</c> sees them: whole frames inside RAM map (to the
/// simulation's memory, so the guest and the device model share it), frames removed from the physmap (ballooned
/// out) do not, and every mapping a device model holds is counted until it unmaps it.
/// </summary>
internal sealed class SimulatedPhysmap : IDisposable
{
    private readonly NativePages _ram;
    private readonly ulong _firstFrame;
    private readonly ulong _frames;
    private readonly HashSet<ulong> _removedFrames = new();
    private readonly Action _onUnmap;
    private int _outstandingMappings;

    public SimulatedPhysmap(ulong ramBase, ulong ramSize)
    {
        _ram = new NativePages(ramSize);
        _firstFrame = ramBase >> 12;
        _frames = ramSize >> 12;
        _onUnmap = () => Interlocked.Decrement(ref _outstandingMappings);
    }

    /// <summary>Where RAM starts in the simulation's memory.</summary>
    public nint Address => _ram.Address;

    /// <summary>Mappings of guest RAM that device models hold now.</summary>
    public int OutstandingMappings => Volatile.Read(ref _outstandingMappings);

    /// <summary>Maps <paramref name="count"/> frames from <paramref name="firstFrame"/>, or EINVAL for <paramref name="operation"/>.</summary>
    public IMappedPages Map(ulong firstFrame, int count, string operation)
    {
        if (count <= 0 || firstFrame < _firstFrame || firstFrame - _firstFrame > _frames - (ulong)count)
        {
            throw SimulatedHypervisor.Error(operation, Errno.EINVAL, $"frames 0x{firstFrame:x}+{count} are not guest RAM");
        }

        lock (_removedFrames)
        {
            for (ulong f = firstFrame; f < firstFrame + (ulong)count; f++)
            {
                if (_removedFrames.Contains(f))
                {
                    throw SimulatedHypervisor.Error(operation, Errno.EINVAL, $"frame 0x{f:x} was removed from the guest's physmap");
                }
            }
        }

        Interlocked.Increment(ref _outstandingMappings);
        return new SimulatedMapping(_ram.Address + (nint)((firstFrame - _firstFrame) << 12), count, _onUnmap);
    }

    /// <summary>Takes a frame out of the physmap (as ballooning does): it no longer maps.</summary>
    public void RemoveFrame(ulong frame)
    {
        lock (_removedFrames)
        {
            _removedFrames.Add(frame);
        }
    }

    public void Dispose() => _ram.Dispose();
}
