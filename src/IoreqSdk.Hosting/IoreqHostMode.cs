namespace IoreqSdk.Hosting;

/// <summary>Which Xen the hosted ioreq server serves.</summary>
public enum IoreqHostMode
{
    /// <summary>Real Xen, through its libraries (run in dom0 as root): the guest is <see cref="IoreqServerHostOptions.Domain"/>.</summary>
    Xen,

    /// <summary>IoreqSdk.Simulation's simulated Xen in this process: a dry run of the same program, and its tests.</summary>
    Simulated,
}
