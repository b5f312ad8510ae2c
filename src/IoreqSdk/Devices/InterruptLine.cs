using System;
using System.Threading;

namespace IoreqSdk.Devices;

/// <summary>
/// An interrupt line a device drives, without knowing what carries it: a PCI function's INTx pin (an x86 IO-APIC
/// input through <c>set_pci_intx_level</c>, or an Arm64 SPI behind the host bridge's swizzle) or a platform device's
/// line (an x86 ISA IRQ, an Arm64 SPI). The host bridge or the platform makes lines; a device only sets their level,
/// as a card only drives its pin (rust-vmm's <c>Trigger</c> plays the same part). Drive a line from the device's
/// thread (the server's event loop).
/// </summary>
public abstract class InterruptLine
{
    private long _assertions;

    /// <summary>Whether the line is asserted now.</summary>
    public bool IsAsserted { get; private set; }

    /// <summary>How many times the line went from deasserted to asserted (each is one event the guest sees).</summary>
    public long Assertions => Interlocked.Read(ref _assertions);

    /// <summary>What carries the line, for logs and transcripts (e.g. "SPI 45", "INTA of 0000:00:05.0").</summary>
    public abstract string Description { get; }

    /// <summary>Sets the line's level; nothing reaches the hypervisor when the level does not change.</summary>
    /// <exception cref="InvalidOperationException">Called on a request loop (a handler of a region declared with
    /// <see cref="DeviceModel.ServeConcurrently"/>): the line is the event loop's to drive; post the change to it.</exception>
    /// <param name="asserted">The level.</param>
    public void Set(bool asserted)
    {
        // The line's state is the event loop's (a concurrent handler's Set would race it): refused on a request loop.
        Server.RequestLoopThread.ThrowIfCurrent("An interrupt line");
        if (asserted == IsAsserted)
        {
            return;
        }

        IsAsserted = asserted;
        if (asserted)
        {
            Interlocked.Increment(ref _assertions);
        }

        Drive(asserted);
    }

    /// <summary>Asserts the line.</summary>
    public void Assert() => Set(true);

    /// <summary>Deasserts the line.</summary>
    public void Deassert() => Set(false);

    /// <summary>One event on an edge-triggered line: asserted, then deasserted.</summary>
    public void Pulse()
    {
        Set(true);
        Set(false);
    }

    /// <summary>Makes a line that calls <paramref name="drive"/> on every change of level.</summary>
    /// <param name="description">What carries the line.</param>
    /// <param name="drive">Sets the level in whatever delivers it.</param>
    /// <returns>The line.</returns>
    public static InterruptLine Create(string description, Action<bool> drive) =>
        new DelegateLine(description ?? throw new ArgumentNullException(nameof(description)), drive ?? throw new ArgumentNullException(nameof(drive)));

    /// <inheritdoc/>
    public override string ToString() => Description;

    /// <summary>Delivers a change of level.</summary>
    /// <param name="asserted">The new level.</param>
    protected abstract void Drive(bool asserted);

    private sealed class DelegateLine : InterruptLine
    {
        private readonly Action<bool> _drive;

        public DelegateLine(string description, Action<bool> drive)
        {
            Description = description;
            _drive = drive;
        }

        public override string Description { get; }

        protected override void Drive(bool asserted) => _drive(asserted);
    }
}
