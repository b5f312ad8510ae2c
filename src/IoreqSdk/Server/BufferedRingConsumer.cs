using System;
using IoreqSdk.Abi;
using IoreqSdk.Dispatch;

namespace IoreqSdk.Server;

/// <summary>
/// The consumer side of Xen's buffered ring (what QEMU's <c>handle_buffered_iopage</c> does), without QEMU's
/// 100 ms timer: the server drains the ring on every event and before every synchronous request.
/// </summary>
internal static class BufferedRingConsumer
{
    /// <summary>Serves every entry between the read and write pointers, advancing the read pointer per entry.</summary>
    public static void Drain(BufferedIoPage ring, IoDispatcher dispatcher, IoreqServerStatistics statistics, Action<long> onTimeOffset)
    {
        while (true)
        {
            ring.ReadPointersAcquire(out uint read, out uint write);
            uint depth = write - read;
            statistics.LastRingDepth = depth;
            if (depth == 0)
            {
                return;
            }

            if (depth > BufferedIoPage.SlotCount)
            {
                // Xen never runs more than 511 ahead: the ring is corrupt. Skip what is claimed to be there rather
                // than serve slots twice; the guest's buffered writes are lost, nothing else is harmed.
                statistics.Malformed++;
                ring.AdvanceReadPointer(depth);
                return;
            }

            BufferedIoRequest entry = ring.ReadSlot(read);
            uint used = 1;
            ulong value = entry.Data;
            if (entry.Size == 8)
            {
                if (depth < 2)
                {
                    // Xen publishes both halves with one pointer update; half a pair is corruption.
                    statistics.Malformed++;
                    ring.AdvanceReadPointer(1);
                    continue;
                }

                value = BufferedIoRequest.CombinePair(entry, ring.ReadSlot(read + 1));
                used = 2;
            }

            if (entry.Type == IoreqType.TimeOffset)
            {
                statistics.TimeOffset++;
                onTimeOffset((long)value);
            }
            else
            {
                dispatcher.DispatchBufferedWrite(entry.Type, entry.Address, entry.Size, value);
            }

            statistics.BufferedEntry++;

            // Per entry, after it was served, with an atomic add (ATOMIC mode: Xen may rebase concurrently).
            ring.AdvanceReadPointer(used);
        }
    }
}
