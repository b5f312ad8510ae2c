using System;
using System.Collections.Generic;
using System.Linq;
using IoreqSdk.Memory;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Virtio;

/// <summary>HostCopy, the small-copy path of guest memory: every length and alignment, the fallback, overlap.</summary>
public sealed class HostCopyTests
{
    [Test]
    public void Every_length_0_to_40_at_every_alignment_copies_exactly_its_bytes()
    {
        var rng = new Random(1);
        for (int length = 0; length <= 40; length++)
        {
            for (int from = 0; from < 8; from++)
            {
                for (int to = 0; to < 8; to++)
                {
                    for (int extra = 0; extra < 3; extra++)
                    {
                        var source = new byte[64];
                        rng.NextBytes(source);
                        var destination = Enumerable.Repeat((byte)0xEE, 80).ToArray();
                        HostCopy.Copy(source.AsSpan(from, length), destination.AsSpan(to, length + extra));
                        var expected = Enumerable.Repeat((byte)0xEE, 80).ToArray();
                        Array.Copy(source, from, expected, to, length);
                        Assert.That(destination, Is.EqualTo(expected), $"length {length} from {from} to {to} extra {extra}");
                    }
                }
            }
        }
    }

    [Test]
    public void A_destination_shorter_than_the_source_throws_as_CopyTo_does_for_every_length()
    {
        for (int length = 1; length <= 20; length++)
        {
            var source = new byte[length];
            var destination = new byte[length - 1];
            Assert.That(() => HostCopy.Copy(source, destination), Throws.ArgumentException, $"length {length}");
        }
    }

    [Test]
    public void Overlapping_spans_copy_as_memmove_would()
    {
        for (int length = 0; length <= 16; length++)
        {
            for (int shift = -8; shift <= 8; shift++)
            {
                var buffer = Enumerable.Range(0, 48).Select(i => (byte)i).ToArray();
                var expected = (byte[])buffer.Clone();
                Array.Copy(expected, 16, expected, 16 + shift, length);
                HostCopy.Copy(buffer.AsSpan(16, length), buffer.AsSpan(16 + shift, length));
                Assert.That(buffer, Is.EqualTo(expected), $"length {length} shift {shift}");
            }
        }
    }
}
