using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Virtio;

namespace MyDevice;

/// <summary>The device on a simulated guest whose virtio driver posts a buffer: no Xen needed.</summary>
internal static class SimulatedRun
{
    public static int Run(GuestArchitecture architecture, VirtioTransportKind transport)
    {
        var device = new EntropyDevice();
        using var guest = SimulatedVirtioGuest.Create(device, transport, architecture);
        ulong buffer = guest.Driver.Allocate(32);
        guest.Driver.Submit(queue: 0, [new GuestBuffer(buffer, 32, deviceWritable: true)]);

        uint length = 0;
        if (!SimulatedVirtioGuest.WaitUntil(() => guest.Driver.TryTakeUsed(0, out _, out length)))
        {
            Console.Error.WriteLine("MyDevice: the device returned no buffer within 10 s");
            return 1;
        }

        Console.WriteLine($"{architecture} guest, virtio-{transport.ToString().ToLowerInvariant()}: {length} random bytes: {Convert.ToHexString(guest.Memory.Span(buffer, (int)length))}");
        return 0;
    }
}
