using System;
using System.IO;
using IoreqSdk.Hypervisor;
using IoreqSdk.Xen;
using NUnit.Framework;

namespace IoreqSdk.Tests.Xen;

/// <summary>
/// The native backend where there is no Xen (this machine, CI): opening it fails with errors that say what to do, and
/// nothing crashes or leaks. On real Xen these tests are inconclusive; the end-to-end run proves the backend there.
/// </summary>
[TestFixture]
public sealed class XenHypervisorTests
{
    [Test]
    public void WithoutPrivcmdOpeningSaysToRunInDom0()
    {
        Assume.That(File.Exists(XenHypervisor.PrivcmdPath), Is.False, "this machine runs on Xen");

        var error = Assert.Throws<HypervisorException>(() => XenHypervisor.Open().Dispose());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(error!.Operation, Is.EqualTo("open /dev/xen/privcmd"));
            Assert.That(error.ErrorNumber, Is.EqualTo(Errno.ENOENT));
            Assert.That(error.Message, Does.Contain("dom0").And.Contain("as root"));
            Assert.That(XenHypervisor.IsSupported, Is.False);
            Assert.That(XenHypervisor.TryOpen(out XenHypervisor? hypervisor, out string? reason), Is.False);
            Assert.That(hypervisor, Is.Null);
            Assert.That(reason, Is.EqualTo(error.Message));
        }
    }

    [Test]
    public void AMissingLibraryNamesThePackagesToInstall()
    {
        string[] libraries = ["libxendevicemodel.so.1", "libxen-not-installed-anywhere.so.7"];
        var error = Assert.Throws<PlatformNotSupportedException>(() => XenHypervisor.Open(libraries, XenHypervisor.PrivcmdPath).Dispose());

        Assert.That(error!.Message, Does.Contain("libxen-not-installed-anywhere.so.7")
            .And.Contain("apt-get install libxendevicemodel1 libxenevtchn1 libxenforeignmemory1"));
    }

    [Test]
    public void LibrariesAreCheckedBeforeTheDevice()
    {
        string missingDevice = Path.Combine(Path.GetTempPath(), "no-such-privcmd");
        var error = Assert.Throws<PlatformNotSupportedException>(() => XenHypervisor.Open(["libxen-missing.so.1"], missingDevice).Dispose());

        Assert.That(error!.Message, Does.Contain("libxen-missing.so.1"), "with neither present, the first thing to fix is named first");
    }

    [Test]
    public void ADeviceFileThatIsNotPrivcmdFailsInTheLibraryWithItsErrno()
    {
        // The libraries exist here; pointing the probe at an existing ordinary file lets the real xendevicemodel_open
        // run and fail, proving the call, errno capture and message path without Xen.
        Assume.That(File.Exists(XenHypervisor.PrivcmdPath), Is.False, "this machine runs on Xen");
        string notPrivcmd = Path.GetTempFileName();
        try
        {
            var error = Assert.Throws<HypervisorException>(() => XenHypervisor.Open(XenLibrariesForTests.Required, notPrivcmd).Dispose());
            using (Assert.EnterMultipleScope())
            {
                Assert.That(error!.Operation, Is.EqualTo("xendevicemodel_open"));
                Assert.That(error.ErrorNumber, Is.Not.Zero);
                Assert.That(error.Message, Does.StartWith("xendevicemodel_open failed: "));
            }
        }
        finally
        {
            File.Delete(notPrivcmd);
        }
    }

    [TestCase(Errno.ESRCH, "xl list")]
    [TestCase(Errno.EPERM, "dom0 as root")]
    [TestCase(Errno.EACCES, "dom0 as root")]
    [TestCase(Errno.ENOSPC, "(8)")]
    [TestCase(Errno.EEXIST, "already claimed")]
    [TestCase(Errno.EOPNOTSUPP, "does not support")]
    public void ErrorsNameTheCallTheErrnoAndWhatToDo(int errno, string advice)
    {
        HypervisorException error = XenErrors.Create("xendevicemodel_create_ioreq_server", errno, domain: 7);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(error.Operation, Is.EqualTo("xendevicemodel_create_ioreq_server"));
            Assert.That(error.ErrorNumber, Is.EqualTo(errno));
            Assert.That(error.Message, Does.StartWith("xendevicemodel_create_ioreq_server failed: "));
            Assert.That(error.Message, Does.Contain($"(errno {errno})").And.Contain(advice));
        }
    }

    [Test]
    public void ErrorsForADomainNameIt() =>
        Assert.That(XenErrors.Create("xendevicemodel_nr_vcpus", Errno.ESRCH, domain: 42).Message, Does.Contain("domain 42 does not exist"));

    [Test]
    public void EachInterruptWakesTheEventLoopOnce()
    {
        // A descriptor that never becomes readable stands in for xenevtchn's: only the wake path is exercised.
        using var never = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.In);
        int fd = (int)never.SafePipeHandle.DangerousGetHandle();
        using XenEventChannel channel = XenEventChannel.ForDescriptor(fd);

        channel.Interrupt();
        Assert.That(channel.WaitPending(out _), Is.False, "woken by Interrupt");

        // The wake was consumed: the next wait blocks until the next Interrupt (a loop that stayed woken would spin and
        // never serve its ports again).
        var second = System.Threading.Tasks.Task.Run(() => channel.WaitPending(out _));
        Assert.That(second.Wait(TimeSpan.FromMilliseconds(300)), Is.False, "still waiting");
        channel.Interrupt();
        Assert.That(second.Wait(TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(second.Result, Is.False);
    }

    private static class XenLibrariesForTests
    {
        public static string[] Required => ["libxendevicemodel.so.1", "libxenevtchn.so.1", "libxenforeignmemory.so.1"];
    }
}
