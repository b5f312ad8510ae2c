using System;
using System.Collections.Generic;
using System.IO;
using IoreqSdk.Simulation.Virtio;

namespace Demu.Simulation.Virtio;

/// <summary>
/// A scripted guest driver for one virtio device: what Linux's driver for it does, step by step, over whichever
/// transport the run chose (the steps reach the device only through <see cref="GuestVirtioDriver"/>), each step a
/// check printed to the transcript.
/// </summary>
internal abstract class VirtioScript
{
    private readonly ScriptChecks _checks;

    protected VirtioScript(TextWriter transcript) => _checks = new ScriptChecks(transcript);

    public int Passed => _checks.Passed;

    public int Failed => _checks.Failed;

    /// <summary>The device features the driver accepts (VERSION_1 always).</summary>
    public abstract ulong Features { get; }

    /// <summary>How many queues the driver sets up.</summary>
    public virtual int QueueCount => 1;

    /// <summary>What the summary prints for this device: label, text.</summary>
    public abstract IEnumerable<(string Label, string Text)> Summary { get; }

    /// <summary>The device's own steps, after the driver negotiated and set up its queues.</summary>
    public abstract void Drive(SimulatedVirtioGuest guest);

    /// <summary>Checks made once the server is gone (what reached a file, say).</summary>
    public virtual void AfterStop()
    {
    }

    public void Check(string step, bool ok, string detail) => _checks.Check(step, ok, detail);

    /// <summary>One buffer on one queue, as a Linux driver posts it: submit, kick, take it back (bounded), noting whether the device interrupted.</summary>
    /// <returns>The used length, or <see cref="uint.MaxValue"/> when the device did not return it.</returns>
    protected static uint Request(SimulatedVirtioGuest guest, int queue, ReadOnlySpan<GuestBuffer> buffer, out bool interrupted, bool awaitInterrupt = false)
    {
        guest.Driver.Submit(queue, buffer);

        // Asked to, wait for the interrupt before looking at the used ring, as a driver that sleeps until its handler
        // runs: with event index, a driver that takes the buffer first has moved used_event past it, and the device
        // then rightly sends no interrupt for a buffer the driver already has.
        bool sawInterrupt = awaitInterrupt && guest.Driver.WaitForInterrupt(TimeSpan.FromSeconds(5)) != GuestVirtioInterrupts.None;
        int handled = guest.Driver.UsedBufferInterrupts + guest.Driver.ConfigChangeInterrupts;
        bool used = guest.Driver.WaitForUsed(queue, out _, out uint length, TimeSpan.FromSeconds(5));
        interrupted = sawInterrupt || guest.Driver.UsedBufferInterrupts + guest.Driver.ConfigChangeInterrupts != handled;
        return used ? length : uint.MaxValue;
    }
}
