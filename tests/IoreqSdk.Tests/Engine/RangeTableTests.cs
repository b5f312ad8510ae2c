using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using IoreqSdk.Dispatch;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>
/// The dispatcher's lookup: the range the previous lookup found is tried first, so every answer is checked against a
/// brute-force oracle from every possible previous range — a stale hint must cost a search, never a wrong answer.
/// </summary>
[TestFixture]
public sealed class RangeTableTests
{
    // Gaps, two adjacent ranges, a one-byte range and the very top of the address space.
    private static readonly (ulong Start, ulong End)[] Ranges =
    [
        (0x1000, 0x1FFF),
        (0x3000, 0x3003),
        (0x3004, 0x4FFF),
        (0x8000, 0x8000),
        (0xFFFF_FFFF_FFFF_F000, ulong.MaxValue),
    ];

    private static readonly int[] Sizes = [1, 2, 4, 8];

    [Test]
    public void EveryLookupAgreesWithTheOracleWhateverRangeWasFoundBefore()
    {
        RangeTable<Target> table = Build(out Target[] targets);
        List<ulong> probes = Probes();
        int checkedLookups = 0;

        // Set the hint to each range in turn (by finding it), then look up every probe at every width.
        foreach ((ulong start, _) in Ranges)
        {
            foreach (ulong address in probes)
            {
                foreach (int size in Sizes)
                {
                    Assert.That(table.TryFind(start, 1, out _, out _), Is.True, "priming the hint");
                    bool found = table.TryFind(address, size, out Target target, out ulong offset);
                    int expected = Oracle(address, size);
                    Assert.That(found, Is.EqualTo(expected >= 0), $"0x{address:x}/{size} after a hit in 0x{start:x}");
                    if (found)
                    {
                        Assert.That(target, Is.SameAs(targets[expected]), $"0x{address:x}/{size}");
                        Assert.That(offset, Is.EqualTo(address - Ranges[expected].Start), $"0x{address:x}/{size}");
                    }

                    checkedLookups++;
                }
            }
        }

        Assert.That(checkedLookups, Is.EqualTo(Ranges.Length * probes.Count * Sizes.Length));
    }

    [Test]
    public void AnAccessAcrossTwoAdjacentRangesIsNotFoundEvenWhenTheFirstWasJustFound()
    {
        RangeTable<Target> table = Build(out _);
        Assert.That(table.TryFind(0x3000, 4, out _, out _), Is.True);

        Assert.That(table.TryFind(0x3002, 4, out _, out _), Is.False);
    }

    [Test]
    public void AnAccessThatWouldWrapPastTheTopIsNotFoundEvenWhenTheTopRangeWasJustFound()
    {
        RangeTable<Target> table = Build(out _);
        Assert.That(table.TryFind(ulong.MaxValue - 7, 8, out _, out _), Is.True);

        Assert.That(table.TryFind(ulong.MaxValue - 1, 4, out _, out _), Is.False);
    }

    [Test]
    public void ATableWithoutTheRangeLastFoundAnswersFromItsOwnRanges()
    {
        RangeTable<Target> table = Build(out Target[] targets);
        Assert.That(table.TryFind(0xFFFF_FFFF_FFFF_F800, 4, out _, out _), Is.True);   // the last entry

        RangeTable<Target> smaller = table.Without(targets[^1]).Without(targets[0]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(smaller.Count, Is.EqualTo(Ranges.Length - 2));
            Assert.That(smaller.TryFind(0xFFFF_FFFF_FFFF_F800, 4, out _, out _), Is.False);
            Assert.That(smaller.TryFind(0x1800, 4, out _, out _), Is.False);
            Assert.That(smaller.TryFind(0x8000, 1, out Target t, out _), Is.True);
            Assert.That(t, Is.SameAs(targets[3]));
        }
    }

    [Test]
    public void ThreadsLookingUpDifferentRangesOfOneTableAllGetTheirOwn()
    {
        // The hint is a plain field every lookup may overwrite: threads fighting over it must still be right.
        RangeTable<Target> table = Build(out Target[] targets);
        const int Lookups = 200_000;
        var wrong = new int[Ranges.Length];
        Parallel.For(0, Ranges.Length, new ParallelOptions { MaxDegreeOfParallelism = Ranges.Length }, r =>
        {
            ulong address = Ranges[r].Start;
            for (int i = 0; i < Lookups; i++)
            {
                if (!table.TryFind(address, 1, out Target target, out ulong offset) || target != targets[r] || offset != 0)
                {
                    wrong[r]++;
                }
            }
        });

        Assert.That(wrong, Is.All.Zero);
    }

    private static RangeTable<Target> Build(out Target[] targets)
    {
        targets = new Target[Ranges.Length];
        RangeTable<Target> table = RangeTable<Target>.Empty;

        // Inserted out of order: the table sorts.
        for (int i = Ranges.Length - 1; i >= 0; i--)
        {
            targets[i] = new Target(i);
            table = table.With(Ranges[i].Start, Ranges[i].End, targets[i]);
        }

        return table;
    }

    /// <summary>Every range's edges and their neighbours, and the gaps.</summary>
    private static List<ulong> Probes()
    {
        var probes = new List<ulong> { 0, 0x800, 0x2800, 0x6000, 0x8001, 0x8000_0000 };
        foreach ((ulong start, ulong end) in Ranges)
        {
            foreach (ulong edge in new[] { start, end })
            {
                for (int delta = -8; delta <= 8; delta++)
                {
                    ulong probe = unchecked(edge + (ulong)(long)delta);
                    if (!probes.Contains(probe))
                    {
                        probes.Add(probe);
                    }
                }
            }
        }

        return probes;
    }

    /// <summary>The range holding every byte of the access, by brute force, or -1.</summary>
    private static int Oracle(ulong address, int size)
    {
        for (int i = 0; i < Ranges.Length; i++)
        {
            bool wraps = address > ulong.MaxValue - (ulong)(size - 1);
            if (!wraps && address >= Ranges[i].Start && address + (ulong)(size - 1) <= Ranges[i].End)
            {
                return i;
            }
        }

        return -1;
    }

    private sealed class Target(int index)
    {
        public int Index { get; } = index;

        public override string ToString() => $"range {Index}";
    }
}
