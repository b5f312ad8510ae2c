namespace IoreqSdk.Abi;

/// <summary>
/// How an ioreq server's pages are named to <c>xenforeignmemory_map_resource</c>: the resource type and frame
/// indices of <c>xen/memory.h</c>.
/// </summary>
public static class IoreqServerResource
{
    /// <summary><c>XENMEM_resource_ioreq_server</c>: the resource type; the resource id is the server id.</summary>
    public const uint ResourceType = 0;

    /// <summary><c>XENMEM_resource_ioreq_server_frame_bufioreq</c>: the buffered ring's frame (only with a ring).</summary>
    public const uint BufferedIoreqFrame = 0;

    /// <summary><c>XENMEM_resource_ioreq_server_frame_ioreq(0)</c>: the first (and in Xen 4.17 only) synchronous page.</summary>
    public const uint IoreqFrame0 = 1;

    /// <summary>The size of one frame in the Xen ABI, on every architecture (<c>XC_PAGE_SIZE</c>).</summary>
    public const int PageSize = 4096;

    /// <summary><c>XENMEM_resource_ioreq_server_frame_ioreq(n)</c>: the frame index of synchronous page <paramref name="n"/>.</summary>
    /// <param name="n">The page number, from 0.</param>
    /// <returns><c>1 + n</c>.</returns>
    public static uint IoreqFrame(uint n) => IoreqFrame0 + n;
}
