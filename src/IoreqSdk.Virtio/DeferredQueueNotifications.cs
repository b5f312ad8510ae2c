using System;
using IoreqSdk.Devices;

namespace IoreqSdk.Virtio;

/// <summary>
/// Available-buffer notifications (doorbell writes) taken off the vCPU's path: the transport answers the guest's write
/// at once and the device processes the queue in posted work on the event loop, after the request is answered. A
/// transport (virtio-mmio's QueueNotify, virtio-pci's notify capability) calls <see cref="Request"/> from its write
/// handler instead of <see cref="VirtioDevice.NotifyQueue(int)"/>.
/// </summary>
/// <remarks>
/// <para>
/// <b>Coalesced and allocation-free.</b> A notify marks its queue pending (one bit a queue) and posts one cached
/// delegate, unless one is posted already: any number of notifies before the loop runs it cost one pass, and each
/// pending queue is processed once in it.
/// </para>
/// <para>
/// <b>Never lost.</b> A refused post (the server's posted-work queue is full, or the server is stopping) is not
/// dropped: the pending queues are processed at once, inside the write — the vCPU waits longer this once, but a
/// driver that kicked and waits for its used buffer (Linux does not kick again) would otherwise hang. Refusals are
/// counted in <see cref="InlinePasses"/>. A posted pass that never runs (the server stopped and dropped its posted
/// work; a later start reuses the devices) would leave the pending flag set for good; so a pass counts as lost once
/// <see cref="StalePassThreshold"/> notifies have been coalesced into it — the loop runs posted work after every
/// request, so a live pass is never more than a few requests behind — and a new one is posted. A pass that runs
/// twice, or for a queue with nothing new, costs only the queue's emptiness check.
/// </para>
/// <para>
/// Everything here runs on the device's thread (the server's event loop: the transport's handlers and posted work),
/// so the pending bits need no atomics.
/// </para>
/// </remarks>
internal sealed class DeferredQueueNotifications
{
    /// <summary>Notifies coalesced into a pass that has not run before it is taken as lost and posted again.</summary>
    public const int StalePassThreshold = 1024;

    private readonly VirtioDevice _device;
    private readonly ulong[] _pending;
    private readonly Action _pass;
    private IDeviceContext? _context;
    private bool _posted;

    // The server run the pass was posted in: a stop drops posted work, so a pass posted in an earlier run never comes.
    private long _postedRun;
    private int _coalesced;

    public DeferredQueueNotifications(VirtioDevice device)
    {
        _device = device;
        _pending = new ulong[(device.QueueCount + 63) / 64];

        // Cached once: posting it again allocates nothing.
        _pass = RunPass;
    }

    /// <summary>Passes that ran inside the guest's write because the post was refused.</summary>
    public long InlinePasses { get; private set; }

    /// <summary>Posted passes that ran.</summary>
    public long PostedPasses { get; private set; }

    /// <summary>Notifies for a queue the device does not have (ignored).</summary>
    public long IgnoredNotifies { get; private set; }

    /// <summary>Marks <paramref name="queueIndex"/> pending (as the guest wrote it) and makes sure a pass will run.</summary>
    /// <param name="queueIndex">The queue the guest notified; out-of-range indices are counted and ignored.</param>
    /// <param name="context">The transport's device context, to post the pass with.</param>
    public void Request(int queueIndex, IDeviceContext context)
    {
        if ((uint)queueIndex >= (uint)_device.QueueCount)
        {
            IgnoredNotifies++;
            return;
        }

        _context = context;
        _pending[queueIndex >> 6] |= 1UL << (queueIndex & 63);
        if (_posted && _postedRun == context.RunNumber && ++_coalesced < StalePassThreshold)
        {
            return;
        }

        _posted = true;
        _postedRun = context.RunNumber;
        _coalesced = 0;
        if (!context.TryPost(_pass))
        {
            _posted = false;
            InlinePasses++;
            Drain();
        }
    }

    /// <summary>
    /// The device asks to process <paramref name="queueIndex"/> again in a later pass (it stopped at its budget with
    /// buffers left). Unlike <see cref="Request"/>, a refused post is reported, never run inline: the device is inside
    /// its own processing, and running it again there is what its budget exists to avoid.
    /// </summary>
    /// <param name="queueIndex">The device's queue.</param>
    /// <param name="context">The transport's device context.</param>
    /// <returns>Whether a pass will process the queue.</returns>
    public bool TrySchedule(int queueIndex, IDeviceContext context)
    {
        if ((uint)queueIndex >= (uint)_device.QueueCount)
        {
            return false;
        }

        _context = context;
        _pending[queueIndex >> 6] |= 1UL << (queueIndex & 63);
        if (_posted && _postedRun == context.RunNumber && ++_coalesced < StalePassThreshold)
        {
            return true;
        }

        _posted = true;
        _postedRun = context.RunNumber;
        _coalesced = 0;
        if (context.TryPost(_pass))
        {
            return true;
        }

        _posted = false;
        _pending[queueIndex >> 6] &= ~(1UL << (queueIndex & 63));
        return false;
    }

    /// <summary>Forgets every pending queue (the device was reset: its queues are gone).</summary>
    public void Clear()
    {
        Array.Clear(_pending, 0, _pending.Length);

        // A pass still posted finds nothing and does no harm; the next notify posts its own rather than trusting it.
        _posted = false;
        _coalesced = 0;
    }

    private void RunPass()
    {
        _posted = false;
        _coalesced = 0;
        PostedPasses++;
        Drain();
    }

    /// <summary>
    /// Processes each queue pending on entry once. Each word of bits is taken whole before its queues run, so a queue
    /// marked again meanwhile (the device asked to continue later, <see cref="IVirtioQueueScheduler"/>) waits for the
    /// next pass instead of holding this one.
    /// </summary>
    private void Drain()
    {
        bool completed = false;
        int word = 0;
        ulong bits = 0;
        try
        {
            for (; word < _pending.Length; word++)
            {
                bits = _pending[word];
                _pending[word] = 0;
                while (bits != 0)
                {
                    int bit = TrailingZeroCount(bits);
                    bits &= bits - 1;
                    _device.NotifyQueue((word * 64) + bit);
                }
            }

            completed = true;
        }
        finally
        {
            if (!completed)
            {
                // The device threw (the loop contains and counts it): the queues not reached yet are still owed a pass.
                _pending[word] |= bits;
                Repost();
            }
        }
    }

    private void Repost()
    {
        if (_context is null || (_posted && _postedRun == _context.RunNumber))
        {
            return;
        }

        _posted = true;
        _postedRun = _context.RunNumber;
        _coalesced = 0;
        if (!_context.TryPost(_pass))
        {
            // Nothing more to do without holding the loop: the next notify retries.
            _posted = false;
        }
    }

    private static int TrailingZeroCount(ulong value)
    {
#if NETSTANDARD2_0
        int count = 0;
        while ((value & 1) == 0)
        {
            value >>= 1;
            count++;
        }

        return count;
#else
        return System.Numerics.BitOperations.TrailingZeroCount(value);
#endif
    }
}
