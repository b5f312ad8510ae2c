using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;

namespace Demu;

/// <summary>
/// Ending a real-Xen run so that the ioreq server is always destroyed. An ioreq server outlives a process that exits
/// without destroying it, and keeps claiming the device's ranges: the guest's next access to them waits for an answer
/// that never comes, and its vCPU hangs. So every way out — a signal, the guest's end, an event loop that does not
/// stop — ends in a destroyed server, within a bound.
/// </summary>
internal static class Teardown
{
    /// <summary>How long the event loop may take to finish its current request once asked to stop.</summary>
    public static readonly TimeSpan DefaultBound = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Turns SIGINT, SIGTERM, SIGHUP and SIGQUIT into <paramref name="stop"/>: each signal's default action (ending the
    /// process at once, server and all) is cancelled, so the teardown runs instead. A second signal changes nothing:
    /// the teardown is already bounded.
    /// </summary>
    public static IDisposable OnSignals(CancellationTokenSource stop)
    {
        var registrations = new List<PosixSignalRegistration>();
        foreach (PosixSignal signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT })
        {
            registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                try
                {
                    stop.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // The run ended meanwhile.
                }
            }));
        }

        return new Registrations(registrations);
    }

    /// <summary>
    /// Waits for a stopped run (<paramref name="serving"/>, whose stop was requested) to finish its teardown. If the
    /// event loop is still busy after <paramref name="bound"/> — a device call that does not return — the ioreq server
    /// is destroyed directly through <paramref name="hypervisor"/>, which releases the guest's ranges; the loop and its
    /// mappings are abandoned to the process's exit.
    /// </summary>
    /// <returns><see langword="true"/> when the run tore down by itself; <see langword="false"/> when it was abandoned.</returns>
    public static async Task<bool> FinishAsync(Task serving, IHypervisor hypervisor, ushort domain, ushort server, TimeSpan bound, TextWriter error)
    {
        using var timeout = new CancellationTokenSource();
        Task finished = await Task.WhenAny(serving, Task.Delay(bound, timeout.Token)).ConfigureAwait(false);
        if (finished == serving)
        {
            timeout.Cancel();
            await serving.ConfigureAwait(false);
            return true;
        }

        error.WriteLine(FormattableString.Invariant(
            $"demu: the event loop did not stop within {bound.TotalSeconds:0.#} s (a device call is still running); destroying ioreq server {server} without it."));
        try
        {
            hypervisor.DestroyIoreqServer(domain, server);
            error.WriteLine($"demu: stopped; ioreq server {server} destroyed, the busy event loop abandoned.");
        }
        catch (HypervisorException e) when (e.ErrorNumber == Errno.ENOENT)
        {
            error.WriteLine($"demu: stopped; ioreq server {server} was gone already.");
        }
        catch (HypervisorException e)
        {
            error.WriteLine($"demu: destroying ioreq server {server} failed: {e.Message} It still claims the device's addresses: the guest's next access to them hangs until the guest is destroyed (xl destroy).");
        }

        return false;
    }

    private sealed class Registrations(List<PosixSignalRegistration> registrations) : IDisposable
    {
        public void Dispose()
        {
            foreach (PosixSignalRegistration registration in registrations)
            {
                registration.Dispose();
            }
        }
    }
}
