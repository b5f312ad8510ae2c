using System;
using System.Collections.Generic;
using CsCheck;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Fuzz.Properties;

/// <summary>
/// Ring index arithmetic across the 16-bit wrap and the used ring's order: for any queue size, batch pattern and
/// notification mode, past the point where the split ring's free-running indices wrap (2^16 buffers) and through many
/// wraps of the packed ring's wrap counters, an in-order device's used buffers come back exactly once each, in the order
/// they were made available, with their lengths (virtio 1.2 §2.7.8, §2.8.21 — the used ring is filled in completion
/// order, and the echo device completes in order), and each batch is signalled (§2.7.10: with event index, once the
/// used index passes used_event, which the driver re-arms at every take).
/// </summary>
[TestFixture]
public sealed class RingProperties
{
    private const ulong In = VirtioRig.Buffers;
    private const ulong Out = VirtioRig.Buffers + 0x1_0000;

    [Test]
    public void UsedBuffersComeBackInOrderAcrossTheIndexWrap([Values] bool packed, [Values] bool eventIndex)
    {
        // (queue size 4, 8 or 16; how far short of the wrap the batches start; batch sizes)
        Gen.Select(Gen.Int[2, 4], Gen.Int[0, 40], Gen.Int[1, 16].Array[8, 24]).Sample(
            (sizeCode, shortOfWrap, batches) =>
            {
                ushort size = (ushort)(1 << sizeCode);
                ulong features = (packed ? VirtioFeatures.RingPacked : 0) | (eventIndex ? VirtioFeatures.EventIndex : 0);
                var rig = new VirtioRig(features, size);
                GuestVirtqueue driver = packed ? rig.StartPacked() : rig.StartSplit();
                GuestBuffer[] single = [new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true)];

                // Up to just short of the split ring's 16-bit wrap, one buffer at a time (the echo rounds check each).
                int before = 65536 - shortOfWrap;
                if (rig.EchoRounds(driver, single, 4, before) != before)
                {
                    throw new AssertionException("a single-buffer round failed before the wrap");
                }

                var expected = new Queue<(ushort Id, uint Length)>();
                foreach (int wanted in batches)
                {
                    int batch = Math.Min(wanted, size / 2);   // two descriptors a buffer (split; packed alike)
                    for (int i = 0; i < batch; i++)
                    {
                        uint length = (uint)(1 + ((expected.Count + i) % 8));
                        ushort id = driver.Post([new GuestBuffer(In + (0x100UL * (uint)i), length, false), new GuestBuffer(Out + (0x100UL * (uint)i), 8, true)]);
                        expected.Enqueue((id, length));
                    }

                    int notified = rig.Transport.UsedNotifications;
                    if (driver.KickPrepare())
                    {
                        rig.Kick();
                    }

                    // The driver asked to hear of every used buffer (used_event re-armed at each take with event index;
                    // no suppression otherwise): a batch used without a notification is a lost interrupt.
                    if (rig.Transport.UsedNotifications == notified)
                    {
                        throw new AssertionException($"a batch of {batch} was used without a used-buffer notification");
                    }

                    while (driver.TryTakeUsed(out ushort id, out uint length))
                    {
                        if (expected.Count == 0)
                        {
                            throw new AssertionException($"buffer {id} came back although none was outstanding");
                        }

                        (ushort wantId, uint wantLength) = expected.Dequeue();
                        if (id != wantId || length != wantLength)
                        {
                            throw new AssertionException($"used ({id}, {length}) where ({wantId}, {wantLength}) was next in order");
                        }
                    }

                    if (expected.Count != 0)
                    {
                        throw new AssertionException($"{expected.Count} buffer(s) made available and kicked were not used");
                    }
                }

                if (rig.Queue.IsBroken)
                {
                    throw new AssertionException($"the queue broke: {rig.Queue.Error}");
                }
            },
            iter: 6,
            threads: 1);
    }
}
