using System;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Server;

/// <summary>
/// The two ways a device model's process ends its server, which every application needs and none should write itself:
/// noticing that the guest is gone, and a stop that always ends with the ioreq server destroyed, even when a device
/// call never returns. An ioreq server outlives a process that exits without destroying it and keeps claiming the
/// device's ranges: the guest's next access to them waits for an answer that never comes, and its vCPU hangs.
/// </summary>
public static class IoreqServerShutdown
{
    /// <summary>How often <see cref="WaitForGuestGoneAsync"/> asks Xen about the server unless told otherwise: 1 s.</summary>
    public static readonly TimeSpan DefaultGuestCheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Completes when the guest is gone. Destroying (or killing) a domain destroys its ioreq servers at once, while the
    /// domain itself lingers, dying, until every mapping of its pages — the server's own included — is released; so
    /// this asks Xen about the server (<c>xendevicemodel_get_ioreq_server_info</c>: ENOENT once it is destroyed) rather
    /// than the domain (ESRCH only once fully gone, which the server's mappings would delay).
    /// </summary>
    /// <param name="server">A started server.</param>
    /// <param name="checkInterval">How often to ask (positive).</param>
    /// <param name="cancellationToken">Ends the watch.</param>
    /// <returns>
    /// <see langword="true"/> when the guest is gone; <see langword="false"/> when the watch was cancelled or the server
    /// stopped by itself (its own teardown destroyed it: that is not the guest's end).
    /// </returns>
    public static async Task<bool> WaitForGuestGoneAsync(this IoreqServer server, TimeSpan checkInterval, CancellationToken cancellationToken)
    {
        if (server is null)
        {
            throw new ArgumentNullException(nameof(server));
        }

        if (checkInterval <= TimeSpan.Zero || checkInterval.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(checkInterval), checkInterval, "The interval is positive and below 24 days.");
        }

        // Read once: Id is valid while the server runs, and the question is about this run's server.
        ushort domain = server.Domain;
        ushort id = server.Id;
        IHypervisor hypervisor = server.Hypervisor;
        while (server.IsRunning)
        {
            try
            {
                await Task.Delay(checkInterval, cancellationToken).ConfigureAwait(false);
                _ = hypervisor.GetBufferedIoreqPort(domain, id);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            catch (HypervisorException e) when (e.ErrorNumber is Errno.ESRCH or Errno.ENOENT)
            {
                // A server that stopped by itself was destroyed by its own teardown, which begins by clearing IsRunning.
                return server.IsRunning;
            }
        }

        return false;
    }

    /// <summary>
    /// Stops the server, bounded: the teardown runs as <see cref="IoreqServer.Stop"/> does, and if it has not finished
    /// when <paramref name="giveUp"/> is cancelled — the event loop is inside a device call that does not return — the
    /// ioreq server is destroyed directly in the hypervisor, which releases the guest's ranges (its vCPUs get no answer
    /// from this process again, and Xen stops routing to it). The busy loop, its thread and its mappings are then
    /// abandoned to the process's exit; when the device call does return, the loop's own teardown finds the server gone.
    /// </summary>
    /// <param name="server">The server (running or not: a server that is not running returns at once).</param>
    /// <param name="giveUp">When to stop waiting for the loop: a host's shutdown timeout, or a bound of the caller's.</param>
    /// <returns>
    /// <see langword="true"/> when the server tore down by itself; <see langword="false"/> when its loop was abandoned
    /// (the ioreq server destroyed all the same, or found destroyed already). Do not dispose the hypervisor then: the
    /// abandoned loop may still be inside a call on it.
    /// </returns>
    public static async Task<bool> StopAsync(this IoreqServer server, CancellationToken giveUp)
    {
        if (server is null)
        {
            throw new ArgumentNullException(nameof(server));
        }

        if (!server.IsRunning)
        {
            server.Stop();   // a run that stopped by itself may still be finishing its teardown: Stop waits for it
            return true;
        }

        ushort domain = server.Domain;
        ushort id = server.Id;

        // On a thread of its own: Stop joins the loop, and a loop that never returns from a device keeps that thread.
        Task stopping = Task.Factory.StartNew(server.Stop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var gaveUp = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using (giveUp.Register(() => gaveUp.TrySetResult(true)))
        {
            if (await Task.WhenAny(stopping, gaveUp.Task).ConfigureAwait(false) == stopping)
            {
                await stopping.ConfigureAwait(false);
                return true;
            }
        }

        try
        {
            server.Hypervisor.DestroyIoreqServer(domain, id);
        }
        catch (HypervisorException e) when (e.ErrorNumber is Errno.ENOENT or Errno.ESRCH)
        {
            // Gone already: the teardown got that far, or the guest's domain was destroyed.
        }

        return false;
    }
}
