using System;
using System.Runtime.InteropServices;
using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Simulation;

/// <summary>Page-aligned, zeroed native memory that stays at one address (what a foreign mapping points at).</summary>
internal sealed unsafe class NativePages : IDisposable
{
    private IntPtr _allocation;

    public NativePages(ulong bytes)
    {
#if NET
        // calloc: a block as large as guest RAM is a fresh anonymous mapping (above glibc's mmap threshold) that the
        // kernel zeroes page by page as it is first touched, so the simulated guest's RAM costs the process only the
        // pages the guest and the device use — as on Xen, where the guest's RAM is not the device model's. Clearing it
        // here would fault in every page (16 MiB of demu's 24.5 MB maximum RSS on the simulated guest).
        _allocation = (nint)NativeMemory.AllocZeroed((nuint)(bytes + 4096));
#else
        _allocation = Marshal.AllocHGlobal((nint)(bytes + 4096));
        new Span<byte>((void*)(((ulong)_allocation + 4095) & ~4095UL), checked((int)bytes)).Clear();
#endif
        Address = (nint)(((ulong)_allocation + 4095) & ~4095UL);
        Size = bytes;
    }

    public nint Address { get; }

    public ulong Size { get; }

    public void Dispose()
    {
        // IntPtr's Interlocked overload exists on netstandard2.0 too: exactly one caller frees.
        nint allocation = Interlocked.Exchange(ref _allocation, IntPtr.Zero);
        if (allocation != 0)
        {
#if NET
            NativeMemory.Free((void*)allocation);
#else
            Marshal.FreeHGlobal(allocation);
#endif
        }
    }
}

/// <summary>A mapping handed to the device model; disposing it only counts (the memory belongs to the simulation).</summary>
internal sealed class SimulatedMapping : IMappedPages
{
    private readonly Action _onUnmap;
    private int _disposed;

    public SimulatedMapping(nint address, int pageCount, Action onUnmap)
    {
        Address = address;
        PageCount = pageCount;
        _onUnmap = onUnmap;
    }

    public nint Address { get; }

    public int PageCount { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _onUnmap();
        }
    }
}
