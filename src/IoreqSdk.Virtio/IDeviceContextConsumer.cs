using IoreqSdk.Devices;

namespace IoreqSdk.Virtio;

/// <summary>
/// A virtio device that needs its server's <see cref="IDeviceContext"/> — to run blocking I/O off the loop, or to post
/// input arriving on another thread — and not only the transport's guest memory. The transport that exposes it (a
/// <see cref="DeviceModel"/>) hands its context over once it has joined a server (in its
/// <c>OnAttached</c>), before the guest can reach the device.
/// </summary>
public interface IDeviceContextConsumer
{
    /// <summary>Gives the device its server's context. Called once, on the loop or before the server starts.</summary>
    /// <param name="context">The context of the transport device.</param>
    void AttachContext(IDeviceContext context);
}
