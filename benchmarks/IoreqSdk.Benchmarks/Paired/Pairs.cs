using System;
using System.Diagnostics;
using System.Globalization;

namespace IoreqSdk.Benchmarks.Paired;

/// <summary>
/// Measures a ratio on a noisy machine: batches of the C side and of the IoreqSdk side alternate, each ratio is taken
/// between the two batches of one pair, and the median over many pairs is reported with its interquartile range.
/// </summary>
/// <remarks>
/// Separate runs cannot give these ratios on a virtual machine: the C floor of a busy-poll round trip measured 74 ns
/// and 480 ns in runs seconds apart (the host moves the vCPUs between cores that share a cache and cores that do
/// not), and the C dispatcher 7 to 11 ns; both swings are larger than the differences being measured. Within a pair
/// both sides meet the same machine.
/// </remarks>
internal static class Pairs
{
    // How long both sides run before the pairs. The runtime compiles a method at tier 0 first and recompiles it
    // optimised only after it has been called 30 times and 100 ms have passed without new tier-0 compilations (twice
    // with dynamic PGO, which instruments in between): without this, a short run measured the server's first
    // round trips as tier-0 code (2.5x the C floor where the steady state is 1.0x). A server runs for hours; its
    // steady state is what is compared.
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1);

    /// <summary>Runs both sides for <see cref="WarmUp"/>, then <paramref name="pairs"/> pairs, and prints
    /// <c>paired NAME c_ns sdk_ns ratio q1 q3 pairs</c> for <c>report.py</c>.</summary>
    /// <param name="name">The scenario, as <c>report.py</c> names it.</param>
    /// <param name="pairs">How many pairs to measure.</param>
    /// <param name="c">One batch of the C side: ns per operation, negative when it computed a wrong answer.</param>
    /// <param name="sdk">One batch of the IoreqSdk side, likewise.</param>
    /// <returns>Whether every batch computed the right answers.</returns>
    public static bool Measure(string name, int pairs, Func<double> c, Func<double> sdk)
    {
        var cNs = new double[pairs];
        var sdkNs = new double[pairs];
        var ratios = new double[pairs];
        long warmUpStart = Stopwatch.GetTimestamp();
        do
        {
            if (c() < 0 || sdk() < 0)
            {
                Console.Error.WriteLine($"{name}: a side computed a wrong answer while warming up.");
                return false;
            }
        }
        while (Stopwatch.GetElapsedTime(warmUpStart) < WarmUp);

        for (int pair = 0; pair < pairs; pair++)
        {
            // Alternate which side goes first, so a drift of the machine during a pair does not favour one side.
            double cBatch;
            double sdkBatch;
            if ((pair & 1) == 0)
            {
                cBatch = c();
                sdkBatch = sdk();
            }
            else
            {
                sdkBatch = sdk();
                cBatch = c();
            }

            if (cBatch < 0 || sdkBatch < 0)
            {
                Console.Error.WriteLine($"{name}: the {(cBatch < 0 ? "C" : "IoreqSdk")} side computed a wrong answer.");
                return false;
            }

            cNs[pair] = cBatch;
            sdkNs[pair] = sdkBatch;
            ratios[pair] = sdkBatch / cBatch;
        }

        Array.Sort(cNs);
        Array.Sort(sdkNs);
        Array.Sort(ratios);
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"paired {name} {Quantile(cNs, 0.5):F1} {Quantile(sdkNs, 0.5):F1} {Quantile(ratios, 0.5):F3} {Quantile(ratios, 0.25):F3} {Quantile(ratios, 0.75):F3} {pairs}"));
        return true;
    }

    private static double Quantile(double[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + ((sorted[above] - sorted[below]) * (position - below));
    }
}
