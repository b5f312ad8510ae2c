using System;
using IoreqSdk.Simulation;
using NUnit.Framework;

namespace IoreqSdk.Tests.Simulation;

/// <summary>
/// The simulated guest's RAM is handed out zeroed without being written (so its untouched pages cost the process
/// nothing): it must read zero everywhere all the same, also where an earlier guest's freed RAM is reused.
/// </summary>
[TestFixture]
public sealed class SimulatedGuestRamTests
{
    [Test]
    public void RamStartsZeroedWhereAnEarlierGuestsRamWasFreed([Values(64 << 10, 1 << 20, 16 << 20)] int ramSize)
    {
        for (int guest = 0; guest < 3; guest++)
        {
            int firstNonZero;
            using (var xen = new SimulatedHypervisor(new SimulationOptions { RamSize = (ulong)ramSize }))
            {
                Span<byte> ram = xen.Ram;
                firstNonZero = ram.IndexOfAnyExcept((byte)0);

                // Leave garbage behind for the next guest's allocation to reuse.
                ram.Fill(0xA5);
            }

            Assert.That(firstNonZero, Is.EqualTo(-1), $"guest {guest}: RAM reads non-zero at offset {firstNonZero}");
        }
    }
}
