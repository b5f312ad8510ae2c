using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Virtio;
using NUnit.Framework;

namespace MyDevice.Tests;

/// <summary>The device behind both virtio transports, on a simulated x86 and Arm64 guest, used by the guest's driver.</summary>
[TestFixture]
public sealed class EntropyDeviceTests
{
    [Test]
    public void EveryBufferComesBackFilled([Values] VirtioTransportKind transport, [Values] GuestArchitecture architecture)
    {
        var device = new EntropyDevice();
        using var guest = SimulatedVirtioGuest.Create(device, transport, architecture);
        ulong buffer = guest.Driver.Allocate(64);
        guest.Driver.Submit(queue: 0, [new GuestBuffer(buffer, 64, deviceWritable: true)]);

        uint length = 0;
        Assert.That(SimulatedVirtioGuest.WaitUntil(() => guest.Driver.TryTakeUsed(0, out _, out length)), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(length, Is.EqualTo(64u));
            Assert.That(guest.Memory.Span(buffer, 64).ToArray().Count(b => b != 0), Is.GreaterThan(32), "random bytes, not zeros");
            Assert.That(device.BytesDelivered, Is.EqualTo(64));
        }
    }

    [Test]
    public void ABufferLargerThanTheDeviceFillsIsFilledUpToItsBound([Values] VirtioTransportKind transport)
    {
        using var guest = SimulatedVirtioGuest.Create(new EntropyDevice(), transport);
        ulong buffer = guest.Driver.Allocate(EntropyDevice.MaxPerBuffer * 2);
        guest.Driver.Submit(queue: 0, [new GuestBuffer(buffer, EntropyDevice.MaxPerBuffer * 2, deviceWritable: true)]);

        uint length = 0;
        Assert.That(SimulatedVirtioGuest.WaitUntil(() => guest.Driver.TryTakeUsed(0, out _, out length)), Is.True);
        Assert.That(length, Is.EqualTo((uint)EntropyDevice.MaxPerBuffer));
    }

    [Test]
    public void ADriverPostingMoreThanAPassGetsEveryBufferBack([Values] VirtioTransportKind transport)
    {
        using var guest = SimulatedVirtioGuest.Create(new EntropyDevice(), transport);
        const int Buffers = EntropyDevice.MaxBuffersPerPass * 2 + 1;
        for (int i = 0; i < Buffers; i++)
        {
            guest.Driver.Submit(queue: 0, [new GuestBuffer(guest.Driver.Allocate(16), 16, deviceWritable: true)]);
        }

        int returned = 0;
        Assert.That(SimulatedVirtioGuest.WaitUntil(() =>
        {
            while (guest.Driver.TryTakeUsed(0, out _, out _))
            {
                returned++;
            }

            return returned == Buffers;
        }), Is.True, $"{returned} of {Buffers} buffers came back");
    }
}
