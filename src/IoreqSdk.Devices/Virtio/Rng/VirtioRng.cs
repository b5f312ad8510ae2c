using System;
using IoreqSdk.Virtio;

namespace IoreqSdk.Devices.Virtio.Rng;

/// <summary>
/// virtio-rng, the entropy device (virtio 1.2 §5.4): device id 4, one queue (requestq), no feature bits of its own,
/// no configuration space. Each buffer the driver posts is filled with random bytes from an <see cref="IRandomSource"/>
/// (the system's cryptographic generator unless given) and returned with the count written.
/// </summary>
/// <remarks>
/// <para>
/// <b>Per the specification.</b> The device places at least one byte in every buffer of non-zero length, and may place
/// fewer than the buffer holds: each buffer gets at most <see cref="MaxBytesPerBuffer"/>. A zero-length buffer is
/// returned with length 0. A buffer with no device-writable part (the driver must not post one) is returned with
/// length 0 and counted in <see cref="ReadOnlyBuffers"/>; the readable part of a mixed buffer is never read. A
/// writable part outside guest RAM is returned with length 0 and the device asks for a reset.
/// </para>
/// <para>
/// <b>Bounded per pass.</b> One notification fills at most <see cref="MaxBytesPerPass"/> bytes and
/// <see cref="MaxBuffersPerPass"/> buffers, so a driver posting huge or endless buffers cannot hold the event loop (and
/// every vCPU waiting on it). Buffers left over are taken in a later pass the device asks its transport for
/// (<see cref="VirtioDevice"/>'s <c>TryContinueLater</c>), after the requests waiting meanwhile are answered; if the
/// transport refuses, they wait for the driver's next notification (<see cref="RefusedContinuations"/>).
/// </para>
/// <para>Nothing is allocated per request: one reusable chain and one scratch buffer of <see cref="ScratchSize"/> bytes, cleared after each buffer.</para>
/// </remarks>
public sealed class VirtioRng : VirtioDevice
{
    /// <summary>The entropy device's virtio id.</summary>
    public const ushort DeviceId = 4;

    /// <summary>The requestq's largest size.</summary>
    public const ushort QueueMaxSize = 256;

    /// <summary>The most bytes a buffer gets unless told otherwise.</summary>
    public const int DefaultMaxBytesPerBuffer = 64 * 1024;

    /// <summary>The most bytes one pass fills unless told otherwise.</summary>
    public const int DefaultMaxBytesPerPass = 256 * 1024;

    /// <summary>The most buffers one pass takes (zero-length ones cost no bytes, but time).</summary>
    public const int MaxBuffersPerPass = 256;

    /// <summary>The size of the scratch buffer random bytes go through on their way to guest memory.</summary>
    public const int ScratchSize = 4096;

    private readonly IRandomSource _source;
    private readonly VirtioDescriptorChain _chain = new();
    private readonly byte[] _scratch = new byte[ScratchSize];

    /// <summary>Creates the device.</summary>
    /// <param name="source">Where the bytes come from (<see cref="SystemRandomSource.Instance"/> unless given).</param>
    /// <param name="maxBytesPerBuffer">The most bytes a buffer gets (at least 1).</param>
    /// <param name="maxBytesPerPass">The most bytes a pass fills (at least <paramref name="maxBytesPerBuffer"/>).</param>
    public VirtioRng(IRandomSource? source = null, int maxBytesPerBuffer = DefaultMaxBytesPerBuffer, int maxBytesPerPass = DefaultMaxBytesPerPass)
        : base(DeviceId, VirtioFeatures.IndirectDescriptors | VirtioFeatures.EventIndex | VirtioFeatures.RingPacked, new[] { QueueMaxSize }, configSize: 0)
    {
        if (maxBytesPerBuffer < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(maxBytesPerBuffer), "A buffer gets at least one byte.");
        }

        if (maxBytesPerPass < maxBytesPerBuffer)
        {
            throw new ArgumentOutOfRangeException(nameof(maxBytesPerPass), "A pass fills at least one buffer's worth.");
        }

        _source = source ?? SystemRandomSource.Instance;
        MaxBytesPerBuffer = maxBytesPerBuffer;
        MaxBytesPerPass = maxBytesPerPass;
    }

    /// <summary>The most bytes a buffer gets.</summary>
    public int MaxBytesPerBuffer { get; }

    /// <summary>The most bytes one pass fills.</summary>
    public int MaxBytesPerPass { get; }

    /// <summary>Random bytes delivered so far.</summary>
    public long BytesDelivered { get; private set; }

    /// <summary>Buffers returned so far (all of them, whatever their length).</summary>
    public long BuffersReturned { get; private set; }

    /// <summary>Buffers with no device-writable part (returned with length 0).</summary>
    public long ReadOnlyBuffers { get; private set; }

    /// <summary>Passes that stopped at their budget and left the rest to a later pass.</summary>
    public long ContinuedPasses { get; private set; }

    /// <summary>Passes that stopped at their budget and whose later pass the transport refused (the rest waits for a notification).</summary>
    public long RefusedContinuations { get; private set; }

    /// <inheritdoc/>
    protected override void OnQueueNotified(VirtioQueue queue)
    {
        long bytesLeft = MaxBytesPerPass;
        int buffersLeft = MaxBuffersPerPass;
        do
        {
            queue.DisableNotifications();
            while (true)
            {
                if (bytesLeft == 0 || buffersLeft == 0)
                {
                    StopAtBudget(queue);
                    return;
                }

                if (!queue.TryPop(_chain))
                {
                    break;
                }

                buffersLeft--;
                uint written;
                try
                {
                    written = Fill(queue, (uint)Math.Min((ulong)Math.Min(MaxBytesPerBuffer, bytesLeft), _chain.WritableLength));
                }
                catch when (_chain.IsOutstanding)
                {
                    // The random source threw (the loop contains it as a device fault): the buffer goes back empty, so
                    // the chain is free for the next pop (held, every later pop would refuse it, even after a reset),
                    // and the driver is asked to notify again (this pass turned notifications off).
                    _scratch.AsSpan().Clear();
                    queue.Push(_chain, 0);
                    _ = queue.EnableNotifications();
                    throw;
                }

                bytesLeft -= written;
            }
        }
        while (queue.EnableNotifications());

        queue.SignalUsed();
    }

    /// <summary>The pass's budget is spent: return what is done, and continue later (notifications stay off meanwhile).</summary>
    private void StopAtBudget(VirtioQueue queue)
    {
        if (YieldPass(queue))
        {
            ContinuedPasses++;
        }
        else
        {
            RefusedContinuations++;
        }
    }

    /// <summary>Fills the popped chain's writable part with <paramref name="length"/> bytes and pushes it.</summary>
    private uint Fill(VirtioQueue queue, uint length)
    {
        if (_chain.WritableLength == 0 && _chain.ReadableLength != 0)
        {
            ReadOnlyBuffers++;
        }

        uint done = 0;
        bool inRam = true;
        while (done < length)
        {
            Span<byte> bytes = _scratch.AsSpan(0, (int)Math.Min(length - done, (uint)_scratch.Length));
            _source.Fill(bytes);
            if (!_chain.TryWrite(done, bytes))
            {
                inRam = false;
                break;
            }

            done += (uint)bytes.Length;
        }

        // Entropy handed to the guest is the guest's: no copy stays behind in the device.
        _scratch.AsSpan(0, (int)Math.Min(length, (uint)_scratch.Length)).Clear();
        if (!inRam)
        {
            // Part of the buffer is not guest RAM: nothing is reported written, and the driver must reset the device.
            queue.Push(_chain, 0);
            BuffersReturned++;
            SetNeedsReset();
            return 0;
        }

        queue.Push(_chain, done);
        BuffersReturned++;
        BytesDelivered += done;
        return done;
    }
}
