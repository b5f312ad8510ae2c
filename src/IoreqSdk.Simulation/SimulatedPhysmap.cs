using System;
using System.Collections.Generic;
using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Simulation;

/// <summary>
/// The guest's RAM and its physmap as <c>xenforeignmemory_map</c> sees them: whole frames inside RAM map (to the
/// simulation's memory, so the guest and the device model share it), frames removed from the physmap (ballooned
/// out) do not, and every mapping a device model holds is counted until it unmaps it. As on Xen, where a domain's
/// pages outlive it while a device model still maps them, the memory is freed only when the physmap is disposed
/// <em>and</em> the last mapping is gone — a device's worker still writing a pinned buffer never writes freed memory.
/// </summary>
internal sealed class SimulatedPhysmap : IDisposable
{
    private readonly NativePages _ram;
    private readonly ulong _firstFrame;
    private readonly ulong _frames;
    private readonly HashSet<ulong> _removedFrames = new();
    private readonly Action _onUnmap;
    private int _outstandingMappings;
    private int _disposed;
    private int _freed;

    public SimulatedPhysmap(ulong ramBase, ulong ramSize)
    {
        _ram = new NativePages(ramSize);
        _firstFrame = ramBase >> 12;
        _frames = ramSize >> 12;
        _onUnmap = () =>
        {
            // Full fence (interlocked) on both sides: of the last unmap and the disposal, whichever comes second sees
            // the other and frees the memory (FreeOnce lets only one of them).
            if (Interlocked.Decrement(ref _outstandingMappings) == 0 && Volatile.Read(ref _disposed) != 0)
            {
                FreeOnce();
            }
        };
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

        // Counted first, checked second: a disposal racing this map either sees the count and leaves the memory to the
        // last unmap, or is seen here and the map is refused (its count given back, which may free the memory).
        Interlocked.Increment(ref _outstandingMappings);
        if (Volatile.Read(ref _disposed) != 0)
        {
            _onUnmap();
            throw SimulatedHypervisor.Error(operation, Errno.ESRCH, "the simulated domain is gone");
        }

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

    public void Dispose()
    {
        Interlocked.Exchange(ref _disposed, 1);
        if (Volatile.Read(ref _outstandingMappings) == 0)
        {
            FreeOnce();
        }
    }

    private void FreeOnce()
    {
        if (Interlocked.Exchange(ref _freed, 1) == 0)
        {
            _ram.Dispose();
        }
    }
}
