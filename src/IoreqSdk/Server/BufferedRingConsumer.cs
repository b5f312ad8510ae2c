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
    /// <summary>
    /// Serves the entries between the read and write pointers, advancing the read pointer per entry — at most one
    /// ring's worth (<see cref="BufferedIoPage.SlotCount"/> slots) per call.
    /// </summary>
    /// <returns><see langword="true"/> when entries are left: the caller must come back (after serving what waits).</returns>
    /// <remarks>
    /// The bound keeps a guest from holding the loop here: a vCPU writing to the buffered window as fast as the loop
    /// drains would otherwise keep this loop going forever while every other vCPU's synchronous request waits.
    /// </remarks>
    public static bool Drain(BufferedIoPage ring, IoDispatcher dispatcher, IoreqServerStatistics statistics, Action<long> onTimeOffset)
    {
        for (uint budget = BufferedIoPage.SlotCount; ; )
        {
            ring.ReadPointersAcquire(out uint read, out uint write);
            uint depth = write - read;
            statistics.LastRingDepth = depth;
            if (depth == 0)
            {
                return false;
            }

            if (budget == 0)
            {
                return true;
            }

            if (depth > BufferedIoPage.SlotCount)
            {
                // Xen never runs more than 511 ahead: the ring is corrupt. Skip what is claimed to be there rather
                // than serve slots twice; the guest's buffered writes are lost, nothing else is harmed.
                statistics.Requests.Malformed++;
                ring.AdvanceReadPointer(depth);
                return false;
            }

            BufferedIoRequest entry = ring.ReadSlot(read);
            uint used = 1;
            ulong value = entry.Data;
            if (entry.Size == 8)
            {
                if (depth < 2)
                {
                    // Xen publishes both halves with one pointer update; half a pair is corruption.
                    statistics.Requests.Malformed++;
                    ring.AdvanceReadPointer(1);
                    budget--;
                    continue;
                }

                value = BufferedIoRequest.CombinePair(entry, ring.ReadSlot(read + 1));
                used = 2;
            }

            if (entry.Type == IoreqType.TimeOffset)
            {
                statistics.Requests.TimeOffset++;
                onTimeOffset((long)value);
            }
            else
            {
                dispatcher.DispatchBufferedWrite(entry.Type, entry.Address, entry.Size, value);
            }

            statistics.BufferedEntry++;

            // Per entry, after it was served, with an atomic add (ATOMIC mode: Xen may rebase concurrently).
            ring.AdvanceReadPointer(used);
            budget = budget > used ? budget - used : 0;
        }
    }
}
