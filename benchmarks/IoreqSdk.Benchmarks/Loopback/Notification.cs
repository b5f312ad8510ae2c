namespace IoreqSdk.Benchmarks.Loopback;

/// <summary>How the two sides of the loopback tell each other a slot changed: as the C baseline does.</summary>
public enum Notification
{
    /// <summary>Both sides spin on shared memory: the floor this machine allows.</summary>
    BusyPoll,

    /// <summary>A pair of eventfds per vCPU: what a kernel event channel costs at best.</summary>
    EventFd,

    /// <summary>
    /// The server busy-polls (<see cref="Server.IoreqServerOptions.BusyPoll"/>) over a model of Xen's event channel
    /// as Linux's evtchn device presents it: a delivered port stays masked until unmasked, a notification to a masked
    /// port only sets it pending, and a delivery posts an eventfd. The producer notifies each request, as Xen does,
    /// and spins for the response.
    /// </summary>
    ServerPolls,
}
