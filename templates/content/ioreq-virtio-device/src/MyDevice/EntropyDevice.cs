using System.Security.Cryptography;
using IoreqSdk.Virtio;

namespace MyDevice;

/// <summary>
/// virtio-rng (virtio 1.2 §5.4): one request queue; each buffer the driver posts comes back filled with random bytes.
/// The queue validates every descriptor chain before the device sees it; the device bounds what one pass does.
/// </summary>
public sealed class EntropyDevice : VirtioDevice
{
    /// <summary>The most a buffer gets filled with: the spec lets a device return less than the buffer holds.</summary>
    public const int MaxPerBuffer = 4096;

    /// <summary>Buffers served in one pass: a driver posting without end must not hold the server's loop.</summary>
    public const int MaxBuffersPerPass = 64;

    private readonly VirtioDescriptorChain _chain = new();
    private readonly byte[] _bytes = new byte[MaxPerBuffer];

    public EntropyDevice()
        : base(deviceType: 4, VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors, queueMaxSizes: [256], configSize: 0)
    {
    }

    /// <summary>Bytes delivered to the guest so far.</summary>
    public long BytesDelivered { get; private set; }

    /// <inheritdoc/>
    protected override void OnQueueNotified(VirtioQueue queue)
    {
        int budget = MaxBuffersPerPass;
        do
        {
            queue.DisableNotifications();
            while (queue.TryPop(_chain))
            {
                int length = (int)Math.Min((ulong)MaxPerBuffer, _chain.WritableLength);
                RandomNumberGenerator.Fill(_bytes.AsSpan(0, length));
                bool written = _chain.TryWrite(0, _bytes.AsSpan(0, length));
                queue.Push(_chain, written ? (uint)length : 0);
                BytesDelivered += written ? length : 0;
                if (--budget == 0)
                {
                    YieldPass(queue);   // signal what is done, and continue in a later pass
                    return;
                }
            }
        }
        while (queue.EnableNotifications());

        queue.SignalUsed();
    }
}
