using System;
using IoreqSdk.Devices;

namespace IoreqSdk.Virtio;

/// <summary>
/// Doorbells that do not hold the vCPU: a transport answers the guest's notify write at once and marks the queue
/// pending here; one cached delegate, posted once however many doorbells ring before it runs, then hands each pending
/// queue to <see cref="VirtioDevice.NotifyQueue(int)"/> on the loop. Nothing allocates per doorbell.
/// </summary>
/// <remarks>
/// Everything here runs on the server's event loop (the guest's write, the posted flush, a reset), so the pending
/// bits and the posted flag need no synchronisation: no other thread ever reads or writes them.
/// </remarks>
internal sealed class QueueNotificationDeferral
{
    /// <summary>Doorbells coalesced into a flush that has not run before it is taken as lost and posted again.</summary>
    public const int StaleFlushThreshold = 1024;

    private readonly VirtioDevice _device;
    private readonly ulong[] _pending;
    private readonly Action _flush;
    private bool _posted;
    private int _coalesced;

    public QueueNotificationDeferral(VirtioDevice device)
    {
        _device = device;
        _pending = new ulong[(device.QueueCount + 63) / 64];
        _flush = Flush;
    }

    /// <summary>Doorbells for a queue the device does not have (ignored).</summary>
    public long Ignored { get; private set; }

    /// <summary>Doorbells processed inside the guest's write because the loop's work queue was full (none is lost).</summary>
    public long ProcessedInline { get; private set; }

    /// <summary>The guest rang queue <paramref name="queue"/>'s doorbell: marks it pending and makes sure a flush is posted.</summary>
    /// <param name="queue">The queue the doorbell names (the guest chose it: checked here).</param>
    /// <param name="context">The device's context, to post the flush.</param>
    public void Ring(int queue, IDeviceContext context)
    {
        if ((uint)queue >= (uint)_device.QueueCount)
        {
            Ignored++;
            return;
        }

        _pending[queue >> 6] |= 1UL << (queue & 63);
        if (_posted && ++_coalesced < StaleFlushThreshold)
        {
            return; // One flush is queued already; it takes this queue too.
        }

        // Nothing posted, or a flush so many doorbells behind that it was dropped (a server stopped with it queued,
        // then started again: the loop runs posted work after every request, so a live flush is never that far
        // behind). A second flush that does run finds nothing pending and costs one pass over the bits.
        _coalesced = 0;

        _posted = true;
        if (!context.TryPost(_flush))
        {
            // The work queue is full (or the server stops): a lost doorbell would hang the driver, so this one is
            // served inside the write, holding the vCPU as an undeferred transport would.
            ProcessedInline++;
            Flush();
        }
    }

    /// <summary>Forgets every pending doorbell (the device was reset: its queues are gone), and any flush thought posted.</summary>
    public void Clear()
    {
        Array.Clear(_pending, 0, _pending.Length);
        _posted = false;
        _coalesced = 0;
    }

    private void Flush()
    {
        _posted = false;
        _coalesced = 0;
        for (int word = 0; word < _pending.Length; word++)
        {
            while (_pending[word] != 0)
            {
                int bit = TrailingZeros(_pending[word]);
                _pending[word] &= ~(1UL << bit);

                // NotifyQueue checks DRIVER_OK and the queue's state itself: a doorbell that raced a reset is dropped there.
                _device.NotifyQueue((word << 6) | bit);
            }
        }
    }

    private static int TrailingZeros(ulong value)
    {
        int count = 0;
        while ((value & 1) == 0)
        {
            value >>= 1;
            count++;
        }

        return count;
    }
}
