using System;
using System.Runtime.InteropServices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;

namespace IoreqSdk.Benchmarks.Loopback;

/// <summary>
/// The loopback guest's RAM: one native block at a guest-physical base. The server maps frames of it
/// (<see cref="Map"/>: pointers into the block, nothing mapped or copied, as the simulator's physmap does), and the
/// benchmark's guest side reads and writes it directly (<see cref="IGuestMemory"/>, for the simulated guest's ring writer).
/// </summary>
internal sealed unsafe class LoopbackGuestRam : IGuestMemory, IDisposable
{
    private const int PageShift = 12;
    private readonly ulong _firstFrame;
    private readonly ulong _frames;
    private byte* _block;

    public LoopbackGuestRam(ulong baseAddress, int size)
    {
        if ((baseAddress & ((1UL << PageShift) - 1)) != 0 || size <= 0 || (size & ((1 << PageShift) - 1)) != 0)
        {
            throw new ArgumentException("Guest RAM is whole pages at a page-aligned address.");
        }

        Base = baseAddress;
        Size = size;
        _firstFrame = baseAddress >> PageShift;
        _frames = (ulong)size >> PageShift;
        _block = (byte*)NativeMemory.AlignedAlloc((nuint)size, 1 << PageShift);
        new Span<byte>(_block, size).Clear();
    }

    /// <summary>The guest-physical address of the first byte.</summary>
    public ulong Base { get; }

    /// <summary>The size in bytes.</summary>
    public int Size { get; }

    /// <summary>The host address of the first byte (for a guest written in C).</summary>
    public nint Pointer => (nint)_block;

    /// <summary>The host address of guest-physical <paramref name="address"/> (which must be RAM).</summary>
    public byte* At(ulong address) => _block + (address - Base);

    /// <summary><c>xenforeignmemory_map</c> of frames that are all RAM: the block's own pages; anything else fails as Xen's would.</summary>
    public IMappedPages Map(ulong firstFrame, int count)
    {
        if (count <= 0 || firstFrame < _firstFrame || firstFrame - _firstFrame > _frames || (ulong)count > _frames - (firstFrame - _firstFrame))
        {
            throw new HypervisorException("xenforeignmemory_map", Errno.EINVAL, "Not guest RAM.");
        }

        return new View((nint)(_block + ((firstFrame - _firstFrame) << PageShift)), count);
    }

    public bool TryRead(ulong address, Span<byte> destination)
    {
        if (!Contains(address, destination.Length))
        {
            return false;
        }

        new ReadOnlySpan<byte>(At(address), destination.Length).CopyTo(destination);
        return true;
    }

    public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        if (!Contains(address, source.Length))
        {
            return false;
        }

        source.CopyTo(new Span<byte>(At(address), source.Length));
        return true;
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(_block);
        _block = null;
    }

    private bool Contains(ulong address, int length) =>
        address >= Base && (ulong)length <= (ulong)Size && address - Base <= (ulong)Size - (ulong)length;

    /// <summary>A mapping that is a view of the block: unmapping it changes nothing (the block lives as long as the loopback).</summary>
    private sealed class View : IMappedPages
    {
        public View(nint address, int pageCount)
        {
            Address = address;
            PageCount = pageCount;
        }

        public nint Address { get; }

        public int PageCount { get; }

        public void Dispose()
        {
        }
    }
}
