using System;

namespace IoreqSdk.Xenstore.Backend;

/// <summary>A device the service served or refused: where it is, what it is, its backend state, why it closed.</summary>
public sealed class BackendDeviceStatus
{
    internal BackendDeviceStatus(string kind, ushort frontendDomain, uint deviceId, string backendPath, string? type, XenbusState state, ushort? ioreqServer, string? reason)
    {
        Kind = kind;
        FrontendDomain = frontendDomain;
        DeviceId = deviceId;
        BackendPath = backendPath;
        Type = type;
        State = state;
        IoreqServer = ioreqServer;
        Reason = reason;
    }

    /// <summary>The backend directory's kind: <c>virtio_disk</c> (libxl's) or <c>ioreq-sdk</c> (the SDK's namespace).</summary>
    public string Kind { get; }

    /// <summary>The guest.</summary>
    public ushort FrontendDomain { get; }

    /// <summary>The device id.</summary>
    public uint DeviceId { get; }

    /// <summary>The backend directory.</summary>
    public string BackendPath { get; }

    /// <summary>The device type, when it was read.</summary>
    public string? Type { get; }

    /// <summary>The backend state the service last wrote.</summary>
    public XenbusState State { get; }

    /// <summary>The device's ioreq server id, while served.</summary>
    public ushort? IoreqServer { get; }

    /// <summary>Why it was closed or refused; null while served.</summary>
    public string? Reason { get; }

    /// <inheritdoc/>
    public override string ToString() => FormattableString.Invariant($"{Kind} {FrontendDomain}/{DeviceId} ({Type}): {State}{(Reason is null ? string.Empty : ", " + Reason)}");
}

/// <summary>A device was served or closed.</summary>
public sealed class BackendDeviceEventArgs : EventArgs
{
    internal BackendDeviceEventArgs(BackendDeviceStatus device) => Device = device;

    /// <summary>The device.</summary>
    public BackendDeviceStatus Device { get; }
}
