using System;
using System.Collections.Generic;
using System.Linq;
using IoreqSdk.Memory;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio;

/// <summary>
/// The chain's copies checked against a byte-array model over random layouts (zero-length segments, empty parts,
/// offsets near 2^64), and the in-place walk's second walk after the chain object's arrays fill, on both ring paths.
/// </summary>
[TestFixture(false)]
[TestFixture(true)]
public sealed class SplitChainModelTests
{
    private const ulong Data = VirtioRig.Buffers;
    private readonly bool _inPlace;

    public SplitChainModelTests(bool inPlace) => _inPlace = inPlace;

    private VirtioRig NewRig(ulong features = 0, ushort size = 16) => new(features, size, 256, ulong.MaxValue, _inPlace);

    private static readonly uint[] Lengths = { 0, 1, 2, 3, 5, 8 };

    /// <summary>Random layouts (zero-length segments among them): every (offset, length) against a byte-array model.</summary>
    [Test]
    public void TryRead_and_TryWrite_agree_with_a_model_for_every_range_of_random_layouts()
    {
        var rng = new Random(7);
        var rig = NewRig();
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        var chain = new VirtioDescriptorChain();
        for (int layout = 0; layout < 60; layout++)
        {
            int readable = rng.Next(0, 6);
            int writable = rng.Next(readable == 0 ? 1 : 0, 6);
            var segments = new List<(ulong Address, uint Length, bool Writable)>();
            for (int i = 0; i < readable + writable; i++)
            {
                segments.Add((Data + (0x100UL * (ulong)i), Lengths[rng.Next(Lengths.Length)], i >= readable));
            }

            for (int i = 0; i < segments.Count; i++)
            {
                bool last = i + 1 == segments.Count;
                ushort flags = (ushort)((segments[i].Writable ? 2 : 0) | (last ? 0 : 1));
                driver.WriteDescriptor(i, segments[i].Address, segments[i].Length, flags, (ushort)(last ? 0 : i + 1));
            }

            for (int i = 0; i < segments.Count; i++)
            {
                for (int b = 0; b < 0x100; b++)
                {
                    rig.Ram.Span(segments[i].Address + (ulong)b, 1)[0] = (byte)((i * 16) + b + 1);
                }
            }

            driver.PublishHead(0);
            Assert.That(rig.Queue.TryPop(chain), Is.True, $"layout {layout}: {rig.Queue.Error}");

            CheckPart(rig, chain, segments.Where(s => !s.Writable).ToList(), write: false, layout);
            CheckPart(rig, chain, segments.Where(s => s.Writable).ToList(), write: true, layout);
            Assert.That(rig.Queue.Push(chain, 0), Is.True);
        }
    }

    private static void CheckPart(VirtioRig rig, VirtioDescriptorChain chain, List<(ulong Address, uint Length, bool Writable)> part, bool write, int layout)
    {
        ulong total = (ulong)part.Sum(s => (long)s.Length);
        var offsets = Enumerable.Range(0, (int)total + 3).Select(o => (ulong)o)
            .Concat(new[] { ulong.MaxValue, ulong.MaxValue - 1, (ulong)uint.MaxValue + 1 });
        foreach (ulong offset in offsets)
        {
            for (int length = 0; length <= (int)total + 2; length++)
            {
                bool fits = offset <= total && (ulong)length <= total - offset;
                // The model: the part's bytes in order, as guest RAM holds them now.
                var flat = part.SelectMany(s => rig.Ram.Span(s.Address, (int)s.Length).ToArray()).ToArray();
                if (!write)
                {
                    var destination = new byte[length];
                    bool ok = chain.TryRead(offset, destination);
                    Assert.That(ok, Is.EqualTo(fits), $"layout {layout} read [{offset}, +{length}) of {total}");
                    if (fits)
                    {
                        Assert.That(destination, Is.EqualTo(flat.Skip((int)offset).Take(length).ToArray()), $"layout {layout} read bytes [{offset}, +{length})");
                    }
                }
                else
                {
                    var before = part.Select(s => rig.Ram.Span(s.Address, 0x100).ToArray()).ToList();
                    var source = Enumerable.Range(0, length).Select(i => (byte)(0xA0 + i)).ToArray();
                    bool ok = chain.TryWrite(offset, source);
                    Assert.That(ok, Is.EqualTo(fits), $"layout {layout} write [{offset}, +{length}) of {total}");
                    var expected = (byte[])flat.Clone();
                    if (fits)
                    {
                        Array.Copy(source, 0, expected, (int)offset, length);
                    }

                    var after = part.SelectMany(s => rig.Ram.Span(s.Address, (int)s.Length).ToArray()).ToArray();
                    Assert.That(after, Is.EqualTo(expected), $"layout {layout} write bytes [{offset}, +{length})");
                    for (int i = 0; i < part.Count; i++)
                    {
                        // Nothing past a segment's end was touched; then restore the segment.
                        Assert.That(rig.Ram.Span(part[i].Address + part[i].Length, 0x100 - (int)part[i].Length).ToArray(),
                            Is.EqualTo(before[i].Skip((int)part[i].Length).ToArray()), $"layout {layout} past segment {i}");
                        before[i].CopyTo(rig.Ram.Span(part[i].Address, 0x100));
                    }
                }
            }
        }
    }

    /// <summary>Chains of 1..Size descriptors, readable then writable in every split, each on a fresh chain object.</summary>
    [Test]
    public void Every_chain_length_up_to_the_queue_size_pops_whole_on_a_fresh_chain_object()
    {
        const ushort size = 32;
        var rig = NewRig(0, size);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        for (int n = 1; n <= size; n++)
        {
            for (int readable = 0; readable <= n; readable += Math.Max(1, n / 5))
            {
                for (int i = 0; i < n; i++)
                {
                    ushort flags = (ushort)((i >= readable ? 2 : 0) | (i + 1 == n ? 0 : 1));
                    driver.WriteDescriptor(i, Data + (0x10UL * (ulong)i), (uint)i + 1, flags, (ushort)(i + 1));
                }

                driver.PublishHead(0);
                var chain = new VirtioDescriptorChain();
                Assert.That(rig.Queue.TryPop(chain), Is.True, $"n {n} readable {readable}: {rig.Queue.Error}");
                Assert.That(chain.Readable.ToArray().Select(s => s.Length), Is.EqualTo(Enumerable.Range(1, readable).Select(i => (uint)i)));
                Assert.That(chain.Writable.ToArray().Select(s => s.Length), Is.EqualTo(Enumerable.Range(readable + 1, n - readable).Select(i => (uint)i)));
                Assert.That(chain.ReadableLength + chain.WritableLength, Is.EqualTo((ulong)(n * (n + 1) / 2)));
                Assert.That(rig.Queue.Push(chain, 0), Is.True);
            }
        }
    }

    [Test]
    public void An_error_after_the_arrays_fill_is_the_guests_error_not_the_internal_sentinel()
    {
        var rig = NewRig();
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        // 5 writable (fills the first array of 4, so a re-walk), then a readable one.
        for (int i = 0; i < 6; i++)
        {
            driver.WriteDescriptor(i, Data + (0x10UL * (ulong)i), 4, (ushort)(i < 5 ? 2 | 1 : 0), (ushort)(i + 1));
        }

        driver.PublishHead(0);
        var chain = new VirtioDescriptorChain();
        bool popped = rig.Queue.TryPop(chain);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(popped, Is.False);
            Assert.That(rig.Queue.Error, Is.EqualTo(VirtioQueueError.WritableBeforeReadable));
            Assert.That(rig.Queue.IsBroken, Is.True);
            Assert.That(chain.IsOutstanding, Is.False);
            Assert.That(chain.TryRead(0, new byte[1]), Is.False);
        }
    }

    [Test]
    public void A_next_loop_longer_than_the_arrays_ends_as_ChainTooLong()
    {
        var rig = NewRig();
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        for (int i = 0; i < 16; i++)
        {
            driver.WriteDescriptor(i, Data + (0x10UL * (ulong)i), 4, 1, (ushort)((i + 1) % 16));
        }

        driver.PublishHead(3);
        var chain = new VirtioDescriptorChain();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Queue.TryPop(chain), Is.False);
            Assert.That(rig.Queue.Error, Is.EqualTo(VirtioQueueError.ChainTooLong));
        }
    }

    [Test]
    public void Direct_descriptors_past_the_arrays_then_a_long_indirect_table()
    {
        var rig = NewRig(VirtioFeatures.IndirectDescriptors);
        rig.Device.Echo = false;
        GuestSplitVirtqueue driver = rig.StartSplit();
        for (int i = 0; i < 15; i++)
        {
            // Split layout: flags at +12 (SetDescriptor's third), next at +14.
            rig.Ram.SetDescriptor(VirtioRig.Tables + (16UL * (ulong)i), Data + 0x1000 + (0x10UL * (ulong)i), 2, (ushort)(2 | (i < 14 ? 1 : 0)), (ushort)(i + 1));
        }

        for (int i = 0; i < 6; i++)
        {
            driver.WriteDescriptor(i, Data + (0x10UL * (ulong)i), 1, 1, (ushort)(i + 1));
        }

        driver.WriteDescriptor(6, VirtioRig.Tables, 16 * 15, 4, 0);
        driver.PublishHead(0);
        var chain = new VirtioDescriptorChain();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Queue.TryPop(chain), Is.True, rig.Queue.Error.ToString());
            Assert.That(chain.Readable.Length, Is.EqualTo(6));
            Assert.That(chain.Writable.Length, Is.EqualTo(15));
            Assert.That(chain.WritableLength, Is.EqualTo(30));
            Assert.That(chain.TryWrite(29, new byte[] { 0x77 }), Is.True);
            Assert.That(rig.Ram.Span(Data + 0x1000 + (0x10UL * 14) + 1, 1)[0], Is.EqualTo(0x77));
        }
    }
}
