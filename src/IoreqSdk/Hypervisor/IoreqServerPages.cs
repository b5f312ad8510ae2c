using System;

namespace IoreqSdk.Hypervisor;

/// <summary>
/// An ioreq server's pages, mapped by <see cref="IHypervisor.AcquireIoreqServerPages"/>: the synchronous page and,
/// when the server has a ring, the buffered page. Disposing it unmaps both.
/// </summary>
public sealed class IoreqServerPages : IDisposable
{
    private readonly IMappedPages _mapping;

    /// <summary>Wraps a mapping.</summary>
    /// <param name="mapping">The mapping; owned from now on.</param>
    /// <param name="ioreqPage">The synchronous page's address.</param>
    /// <param name="bufferedPage">The buffered page's address, or 0 without a ring.</param>
    public IoreqServerPages(IMappedPages mapping, nint ioreqPage, nint bufferedPage)
    {
        _mapping = mapping ?? throw new ArgumentNullException(nameof(mapping));
        IoreqPage = ioreqPage;
        BufferedPage = bufferedPage;
    }

    /// <summary>The synchronous page (<c>shared_iopage_t</c>).</summary>
    public nint IoreqPage { get; }

    /// <summary>The buffered page (<c>buffered_iopage_t</c>), or 0 when the server has no ring.</summary>
    public nint BufferedPage { get; }

    /// <inheritdoc/>
    public void Dispose() => _mapping.Dispose();
}
