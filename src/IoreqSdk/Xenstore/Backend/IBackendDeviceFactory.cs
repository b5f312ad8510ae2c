using System;

namespace IoreqSdk.Xenstore.Backend;

/// <summary>
/// Builds one kind of device from its xenstore keys: validates every key it reads (they are the toolstack's or a user
/// script's words, checked as hostile input), puts the device on the request's ioreq server, and returns what must be
/// disposed once the server has stopped (an open disk image), or null.
/// </summary>
public interface IBackendDeviceFactory
{
    /// <summary>
    /// The device type this factory builds: <c>virtio_disk</c> for libxl's virtio disks, or the value of the
    /// <c>type</c> key in the SDK's own namespace (<c>virtio-blk</c>, <c>virtio-rng</c>, …).
    /// </summary>
    string Type { get; }

    /// <summary>Builds the device on <see cref="BackendDeviceRequest.Server"/> (not started yet).</summary>
    /// <exception cref="BackendDeviceException">A key is missing or invalid; the message is the log line.</exception>
    IDisposable? Create(BackendDeviceRequest request);
}
