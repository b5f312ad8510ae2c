using System;
using System.Linq;
using System.Security.Cryptography;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Docs;

/// <summary>The device and the test in docs/writing-a-virtio-device.md, as they are written there.</summary>
[TestFixture]
public sealed class WritingAVirtioDeviceTests
{
    [Test]
    public void TheEntropyDeviceFillsEveryBuffer([Values] GuestArchitecture architecture, [Values] VirtioTransportKind transport)
    {
        using var guest = SimulatedVirtioGuest.Create(new TinyRng(), transport, architecture);
        ulong buffer = guest.Driver.Allocate(64);
        guest.Driver.Submit(queue: 0, [new GuestBuffer(buffer, 64, deviceWritable: true)]);

        uint length = 0;
        Assert.That(SimulatedVirtioGuest.WaitUntil(() => guest.Driver.TryTakeUsed(0, out _, out length)), Is.True);
        Assert.That(length, Is.EqualTo(64u));
        Assert.That(guest.Memory.Span(buffer, 64).ToArray().Count(b => b != 0), Is.GreaterThan(32));
    }
}

/// <summary>virtio-rng (virtio 1.2 §5.4) in a few lines: one queue, each writable buffer filled with random bytes.</summary>
public sealed class TinyRng : VirtioDevice
{
    private const int MaxPerBuffer = 4096;     // the spec lets a device fill less than the buffer holds
    private const int MaxBuffersPerPass = 64;  // a driver posting without end must not hold the loop

    private readonly VirtioDescriptorChain _chain = new();
    private readonly byte[] _bytes = new byte[MaxPerBuffer];

    public TinyRng()
        : base(deviceType: 4, VirtioFeatures.EventIndex | VirtioFeatures.IndirectDescriptors, queueMaxSizes: [256], configSize: 0)
    {
    }

    protected override void OnQueueNotified(VirtioQueue queue)
    {
        int budget = MaxBuffersPerPass;
        do
        {
            queue.DisableNotifications();
            while (queue.TryPop(_chain))
            {
                int length = (int)Math.Min((ulong)MaxPerBuffer, _chain.WritableLength);
                RandomNumberGenerator.Fill(_bytes.AsSpan(0, length));
                bool written = _chain.TryWrite(0, _bytes.AsSpan(0, length));
                queue.Push(_chain, written ? (uint)length : 0);
                if (--budget == 0)
                {
                    YieldPass(queue); // signal, and come back in a later pass (or at the driver's next kick)
                    return;
                }
            }
        }
        while (queue.EnableNotifications());

        queue.SignalUsed();
    }
}
