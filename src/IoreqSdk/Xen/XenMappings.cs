using System;
using System.Threading;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Xen;

/// <summary>An ioreq server's pages, mapped with <c>xenforeignmemory_map_resource</c>.</summary>
internal sealed class XenResourceMapping : IMappedPages
{
    private readonly SafeXenForeignMemoryHandle _parent;
    private readonly nint _resource;
    private int _disposed;

    public XenResourceMapping(SafeXenForeignMemoryHandle parent, nint resource, nint address, int pageCount)
    {
        bool added = false;
        parent.DangerousAddRef(ref added);
        _parent = parent;
        _resource = resource;
        Address = address;
        PageCount = pageCount;
    }

    public nint Address { get; }

    public int PageCount { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _ = Interop.XenForeignMemory.UnmapResource(_parent.DangerousGetHandle(), _resource);
        _parent.DangerousRelease();
    }
}

/// <summary>Guest frames mapped with <c>xenforeignmemory_map</c>.</summary>
internal sealed class XenForeignMapping : IMappedPages
{
    private readonly SafeXenForeignMemoryHandle _parent;
    private int _disposed;

    public XenForeignMapping(SafeXenForeignMemoryHandle parent, nint address, int pageCount)
    {
        bool added = false;
        parent.DangerousAddRef(ref added);
        _parent = parent;
        Address = address;
        PageCount = pageCount;
    }

    public nint Address { get; }

    public int PageCount { get; }

    public unsafe void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _ = Interop.XenForeignMemory.Unmap(_parent.DangerousGetHandle(), (void*)Address, (nuint)PageCount);
        _parent.DangerousRelease();
    }
}
