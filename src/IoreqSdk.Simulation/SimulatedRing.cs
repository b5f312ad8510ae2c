using System.Threading;
using IoreqSdk.Abi;

namespace IoreqSdk.Simulation;

/// <summary>Xen's producer side of the buffered ring (<c>ioreq_send_buffered</c>).</summary>
internal static class SimulatedRing
{
    public static bool TryWrite(SimulatedServer server, IoreqType type, uint address, int size, ulong value)
    {
        BufferedIoPage ring = server.Ring;
        lock (server.RingLock)
        {
            ring.ReadPointersAcquire(out uint read, out uint write);
            uint slots = size == 8 ? 2u : 1u;

            // Full: fall back to the synchronous path.
            if (write - read > BufferedIoPage.SlotCount - slots)
            {
                return false;
            }

            if (size == 8)
            {
                BufferedIoRequest.CreatePair(type, address, value, out BufferedIoRequest low, out BufferedIoRequest high);
                ring.WriteSlot(write, low);
                ring.WriteSlot(write + 1, high);
            }
            else
            {
                ring.WriteSlot(write, BufferedIoRequest.Create(type, IoreqDirection.Write, size, address, (uint)value));
            }

            // smp_wmb, then the pointer: the consumer sees the slots before the pointer that covers them.
            ring.PublishWritePointer(write + slots);

            if (server.Mode == BufferedIoreqMode.Atomic)
            {
                // Rebase both pointers by the same multiple of 511 with one 64-bit CAS, so they never wrap.
                while (true)
                {
                    ring.ReadPointersAcquire(out uint r, out uint w);
                    if (r < BufferedIoPage.SlotCount)
                    {
                        break;
                    }

                    uint rebase = r - (r % BufferedIoPage.SlotCount);
                    if (ring.CompareExchangePointers(r, w, r - rebase, w - rebase))
                    {
                        break;
                    }
                }
            }
        }

        server.BufferedPort!.NotifyDm();
        return true;
    }

    /// <summary>Xen's TIMEOFFSET broadcast: the RTC delta as a buffered 8-byte write to every enabled server with a ring.</summary>
    public static void BroadcastTimeOffset(SimulatedHypervisor xen, long deltaSeconds)
    {
        foreach (SimulatedServer server in xen.Servers.Enabled())
        {
            if (server.Mode != BufferedIoreqMode.Off)
            {
                TryWrite(server, IoreqType.TimeOffset, 0, 8, (ulong)deltaSeconds);
            }
        }
    }
}
