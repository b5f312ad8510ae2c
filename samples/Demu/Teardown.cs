using System;
using System.Runtime.InteropServices;

namespace Demu;

/// <summary>
/// Ending a real-Xen run so that the ioreq server is always destroyed. An ioreq server outlives a process that exits
/// without destroying it, and keeps claiming the device's ranges: the guest's next access to them waits for an answer
/// that never comes, and its vCPU hangs. So every way out — a signal, the guest's end, an event loop that does not
/// stop — ends in a destroyed server, within a bound: the Generic Host's lifetime turns SIGINT, SIGTERM and SIGQUIT
/// into a stop (systemd's lifetime SIGTERM, under systemd), IoreqSdk.Hosting's hosted services bound the teardown and
/// destroy a server whose loop is stuck, and <see cref="OnHangup"/> adds the one signal the host leaves alone.
/// </summary>
internal static class Teardown
{
    /// <summary>How long the event loop may take to finish its current request once asked to stop.</summary>
    public static readonly TimeSpan DefaultBound = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Turns SIGHUP (the terminal demu runs in closed) into <paramref name="stop"/>: its default action ends the
    /// process at once, server and all, and the host's lifetime does not handle it. A second signal changes nothing: the
    /// teardown is already bounded. Under <c>nohup</c> (SIGHUP ignored from the start) .NET leaves the signal ignored and
    /// this never runs, which is what nohup asks for.
    /// </summary>
    public static IDisposable OnHangup(Action stop) => PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
    {
        context.Cancel = true;
        try
        {
            stop();
        }
        catch (ObjectDisposedException)
        {
            // The run ended meanwhile.
        }
    });
}
