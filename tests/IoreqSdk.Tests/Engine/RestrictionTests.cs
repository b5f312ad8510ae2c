using System;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>
/// Deprivileging (<see cref="IoreqServerOptions.RestrictHandlesToDomain"/>): after bring-up the hypervisor's handles
/// act on the served guest only, as <c>xendevicemodel_restrict</c> and friends make them on Xen.
/// </summary>
[TestFixture]
public sealed class RestrictionTests
{
    private const ulong DeviceBase = 0xFE00_0000;

    [Test]
    public void AfterBringUpOnlyTheGuestCanBeReached()
    {
        using var xen = new SimulatedHypervisor();
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, DeviceBase);
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, RestrictHandlesToDomain = true });
        server.AddDevice(device);
        server.Start();
        ushort other = (ushort)(xen.Domain + 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(xen.RestrictedTo, Is.EqualTo(xen.Domain));
            Assert.That(() => xen.GetVcpuCount(other), ThrowsErrno(Errno.EPERM), "a device-model call for another domain");
            Assert.That(() => xen.MapGuestFrames(other, 0, 1, writable: false), ThrowsErrno(Errno.EPERM), "foreign memory of another domain");
            Assert.That(() => xen.CreateIoreqServer(other, IoreqSdk.Abi.BufferedIoreqMode.Off), ThrowsErrno(Errno.EPERM), "serving another domain");
            using IEventChannel channel = xen.OpenEventChannel();
            Assert.That(() => channel.BindInterdomain(other, 1), ThrowsErrno(Errno.EACCES), "an event channel to another domain, even on a handle opened later");
            Assert.That(() => xen.Restrict(other), ThrowsErrno(Errno.EINVAL), "a restriction cannot be widened or moved");
        }

        // Everything for the guest still works: its accesses, guest memory, moving a region, and (at Dispose) teardown.
        xen.Vcpu(0).WriteMmio(DeviceBase + 8, 4, 0x1234);
        using (IMappedPages ram = xen.MapGuestFrames(xen.Domain, 0, 1, writable: true))
        {
            Assert.That(ram.PageCount, Is.EqualTo(1));
        }

        // Region mapping belongs to the event loop (a device moves its regions from a handler or posted work).
        using (var moved = new System.Threading.ManualResetEventSlim())
        {
            device.Context.Post(() =>
            {
                device.Context.MapRegion(device.Region, DeviceBase + 0x10_0000);
                moved.Set();
            });
            Assert.That(moved.Wait(TimeSpan.FromSeconds(10)), Is.True, "the loop ran the move");
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(xen.Vcpu(0).ReadMmio(DeviceBase + 0x10_0000 + 8, 4), Is.EqualTo(0x1234UL));
            Assert.That(xen.CrashReason, Is.Null);
        }
    }

    [Test]
    public void WithoutTheOptionNothingIsRestricted()
    {
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        server.AddDevice(new RegisterFile(RegionKind.Mmio, 0x1000, DeviceBase));
        server.Start();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(xen.RestrictedTo, Is.Null);
            Assert.That(() => xen.GetVcpuCount((ushort)(xen.Domain + 1)), ThrowsErrno(Errno.ENOENT), "no such domain, but not refused");
        }
    }

    private static NUnit.Framework.Constraints.EqualNumericConstraint<int> ThrowsErrno(int errno) =>
        Throws.InstanceOf<HypervisorException>().With.Property(nameof(HypervisorException.ErrorNumber)).EqualTo(errno);
}
