using System;

namespace IoreqSdk.Hypervisor;

/// <summary>
/// Memory another domain shares with this process (an ioreq server's pages, or guest frames). Disposing it unmaps
/// the memory; nothing may touch <see cref="Address"/> afterwards.
/// </summary>
public interface IMappedPages : IDisposable
{
    /// <summary>The address of the first page.</summary>
    nint Address { get; }

    /// <summary>How many 4 KiB pages are mapped.</summary>
    int PageCount { get; }
}
