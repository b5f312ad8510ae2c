namespace IoreqSdk.Memory;

/// <summary>
/// Guest RAM whose mappings can be pinned: a device hands a request's data buffers to another thread as host memory
/// — zero copy — instead of copying them through a buffer of its own on the loop.
/// </summary>
/// <remarks>
/// <para>
/// The server's guest memory (<see cref="Devices.IDeviceContext.Memory"/>) implements this interface. Pinning is done
/// on its event loop; the pinned memory may be used from any thread until the pin is released. Mappings are made a
/// window of 64 frames (256 KiB) at a time and kept for the next pin, so a device pinning its requests' buffers maps
/// guest memory only when it moves to another window.
/// </para>
/// <para>
/// <b>Ordered against INVALIDATE.</b> When the guest's physical map changes (Xen's INVALIDATE), when a window is
/// evicted for another and when the server stops, an unpinned window is unmapped at once; a pinned one is taken out of
/// use — no new pin reaches it — and unmapped when its last pin is released. The INVALIDATE is answered at once: the
/// vCPU does not wait for device I/O. (QEMU drains its block I/O before it flushes its map cache instead; here the
/// I/O in flight keeps its frames, which Xen keeps alive while they are mapped, so it is memory-safe either way.)
/// Until the release, the device's I/O lands in the frames that were the guest's when it was started; a guest that
/// gives away a page with I/O in flight to it loses that I/O, as on hardware.
/// </para>
/// <para>
/// <b>Bounded.</b> What pins can keep mapped is the windows of the table plus, outside it, at most as many frames
/// again (pinned windows an INVALIDATE dropped, pieces mapped on their own because their window holds a frame that is
/// not RAM or their slot is held by another pinned window); past that a pin is refused and the device copies. A pin
/// that finds its window mapped allocates nothing; one that maps a window allocates its mapping objects.
/// </para>
/// </remarks>
public interface IPinnableGuestMemory : IGuestMemory
{
    /// <summary>
    /// Pins the start of the guest range [<paramref name="address"/>, <paramref name="address"/> + <paramref name="length"/>):
    /// as much of it as one mapping holds (up to the end of its 256 KiB window).
    /// </summary>
    /// <param name="address">The guest-physical address.</param>
    /// <param name="length">The byte count (1 or more).</param>
    /// <param name="buffer">Where the pinned bytes are in this process: <see cref="HostBuffer.Length"/> bytes, at most <paramref name="length"/>.</param>
    /// <param name="pin">What to release once the memory is no longer used.</param>
    /// <returns>
    /// <see langword="false"/> if the piece holds a frame that is not RAM, the budget outside the table is spent, or the
    /// memory is gone (the server was disposed): use the copies then.
    /// </returns>
    bool TryPin(ulong address, int length, out HostBuffer buffer, out GuestMemoryPin pin);
}
