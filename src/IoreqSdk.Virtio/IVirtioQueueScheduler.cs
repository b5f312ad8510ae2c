namespace IoreqSdk.Virtio;

/// <summary>
/// What a transport offers a device that bounds its work per pass: processing a queue again later, on the event loop,
/// after the requests waiting meanwhile have been answered (<see cref="VirtioDevice.TryContinueLater(VirtioQueue)"/>).
/// Optional: a transport implements it beside <see cref="IVirtioTransport"/>; the SDK's virtio-mmio transport does.
/// </summary>
public interface IVirtioQueueScheduler
{
    /// <summary>
    /// Arranges for the device's <c>OnQueueNotified</c> to run for queue <paramref name="queueIndex"/> in a later
    /// turn of the loop, as if the driver had notified it (several requests before it runs make one call).
    /// </summary>
    /// <param name="queueIndex">The queue.</param>
    /// <returns>Whether the call was arranged (false: the loop's posted-work queue is full or the server is stopping).</returns>
    bool TryScheduleQueue(int queueIndex);
}
