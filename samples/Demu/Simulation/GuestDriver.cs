using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Simulation;

namespace Demu.Simulation;

/// <summary>
/// A scripted guest driver: it reaches its function only as a guest does (configuration space, BARs, interrupts,
/// guest RAM) and checks what the device answers, printing each step.
/// </summary>
internal abstract class GuestDriver
{
    private readonly ScriptChecks _checks;

    protected GuestDriver(SimulatedHypervisor xen, PciPlatform platform, EnumeratedFunction function, InterruptLine intx, TextWriter transcript)
    {
        Xen = xen;
        Function = function;
        Transcript = transcript;
        _checks = new ScriptChecks(transcript);
        Pci = new GuestPci(xen.Vcpu(0), platform);
        Interrupts = new InterruptObserver(xen, intx);
    }

    public int Passed => _checks.Passed;

    public int Failed => _checks.Failed;

    /// <summary>What the summary prints for this device: label, text.</summary>
    public abstract IEnumerable<(string Label, string Text)> Summary { get; }

    public InterruptObserver Interrupts { get; }

    protected SimulatedHypervisor Xen { get; }

    protected EnumeratedFunction Function { get; }

    protected GuestPci Pci { get; }

    protected TextWriter Transcript { get; }

    /// <summary>The BAR the firmware assigned at <paramref name="index"/>.</summary>
    /// <remarks>
    /// A loop, not LINQ's Single with a lambda: the timed idle reads look their BAR up each time, and the closure and
    /// delegate (88 bytes a read, 1.8 MB over a run) were most of what the simulated run allocated and so, with no
    /// garbage collection in so short a run, most of demu's managed heap (benchmarks/README.md, Footprint).
    /// </remarks>
    protected AssignedBar Bar(int index)
    {
        IReadOnlyList<AssignedBar> bars = Function.Bars;
        for (int i = 0; i < bars.Count; i++)
        {
            if (bars[i].Index == index)
            {
                return bars[i];
            }
        }

        throw new InvalidOperationException($"The firmware assigned no BAR{index} to {Function.Address}.");
    }

    public abstract void Run();

    /// <summary>Prints a step and counts it.</summary>
    protected void Check(string step, bool ok, string detail) => _checks.Check(step, ok, detail);

    protected void Note(string step, string detail) => _checks.Note(step, detail);

    /// <summary>One cheap register read with no side effect, for timing the request path once the script is done.</summary>
    public abstract void ReadIdleRegister();

    /// <summary>Polls a register as a driver does, giving up after a bound.</summary>
    protected static bool PollUntil(Func<bool> condition) => BoundedPoll.Until(condition);
}
