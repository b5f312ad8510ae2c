using System;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.OnGuest;

/// <summary>The first used buffer after DRIVER_OK interrupts the driver, on every transport and platform, with and without event index.</summary>
[TestFixture]
public sealed class FirstInterruptTests
{
    [Test]
    public void The_first_used_buffer_interrupts([Values] GuestArchitecture architecture, [Values] VirtioTransportKind transport, [Values(0UL, VirtioFeatures.EventIndex)] ulong features)
    {
        using SimulatedVirtioGuest guest = SimulatedVirtioGuest.Create(new VirtioRng(), transport, architecture, initialize: false, options: new IoreqSdk.Simulation.SimulationOptions { Architecture = architecture, VcpuCount = 1 });
        guest.Driver.Initialize(features, 1);
        ulong buffer = guest.Driver.Allocate(1 << 20);
        guest.Driver.Submit(0, [new GuestBuffer(buffer, 64, true)]);
        GuestVirtioInterrupts causes = guest.Driver.WaitForInterrupt(TimeSpan.FromSeconds(5));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(causes, Is.EqualTo(GuestVirtioInterrupts.UsedBuffers));
            Assert.That(guest.Driver.TryTakeUsed(0, out _, out uint length), Is.True);
            Assert.That(length, Is.EqualTo(64u));
        }
    }
}
