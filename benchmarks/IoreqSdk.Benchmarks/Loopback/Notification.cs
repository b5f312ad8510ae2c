namespace IoreqSdk.Benchmarks.Loopback;

/// <summary>How the two sides of the loopback tell each other a slot changed: as the C baseline does.</summary>
public enum Notification
{
    /// <summary>Both sides spin on shared memory: the floor this machine allows.</summary>
    BusyPoll,

    /// <summary>A pair of eventfds per vCPU: what a kernel event channel costs at best.</summary>
    EventFd,
}
