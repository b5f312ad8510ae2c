namespace IoreqSdk.Xenstore;

/// <summary>A xenbus device end's state, written to its <c>state</c> node (<c>enum xenbus_state</c>, xen/include/public/io/xenbus.h).</summary>
public enum XenbusState
{
    /// <summary>0: unknown (the node is missing or unreadable).</summary>
    Unknown = 0,

    /// <summary>1: the toolstack created the device; its end is setting up.</summary>
    Initialising = 1,

    /// <summary>2: the backend is ready and waits for the frontend (what libxl waits 10 s for when it adds a device).</summary>
    InitWait = 2,

    /// <summary>3: the frontend has published its details.</summary>
    Initialised = 3,

    /// <summary>4: connected, in service.</summary>
    Connected = 4,

    /// <summary>5: shutting down.</summary>
    Closing = 5,

    /// <summary>6: closed.</summary>
    Closed = 6,

    /// <summary>7: being reconfigured.</summary>
    Reconfiguring = 7,

    /// <summary>8: reconfigured.</summary>
    Reconfigured = 8,
}
