using System.CommandLine;
using System.IO;
using Demu;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>The README's first command: demu on its simulated guest, every device on every platform, and its errors.</summary>
[TestFixture]
public sealed class DemuCommandTests
{
    [TestCase("edu", "x86", "7 passed, 0 failed", "(MSI)")]
    [TestCase("edu", "arm64", "7 passed, 0 failed", "(INTA -> SPI 45)")]
    [TestCase("serial", "x86", "6 passed, 0 failed", "(INTA (level, IO-APIC))")]
    [TestCase("serial", "arm64", "6 passed, 0 failed", "through the PIO aperture")]
    public void RunsTheScriptedGuestDriverAndSummarises(string device, string platform, string checks, string detail)
    {
        var (exitCode, output, error) = Run("--device", device, "--platform", platform);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero, output + error);
            Assert.That(output, Does.Contain(checks));
            Assert.That(output, Does.Contain(detail));
            Assert.That(output, Does.Contain("ioreq server destroyed"));
            Assert.That(output, Does.Contain("0 unclaimed, 0 device faults"));
            Assert.That(output, Does.Not.Contain("FAIL"));
            Assert.That(error, Is.Empty);
        }
    }

    [Test]
    public void TheSerialDevicesOutputCanGoToAFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"demu-serial-{System.Guid.NewGuid():N}.txt");
        try
        {
            var (exitCode, _, _) = Run("--device", "serial", "--serial-output", path);
            Assert.That(exitCode, Is.Zero);
            Assert.That(File.ReadAllText(path), Is.EqualTo(Demu.Simulation.SerialDriver.GuestMessage));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestCase("--device", "floppy", "floppy")]
    [TestCase("--platform", "riscv", "riscv")]
    [TestCase("--bdf", "00:32.0", "not a PCI address")]
    [TestCase("--bdf", "01:05.0", "bus 0")]
    [TestCase("--ecam-base", "0xZZ", "not a number")]
    public void BadOptionsAreRefusedWithAMessage(string option, string value, string message)
    {
        var (exitCode, _, error) = Run(option, value);

        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(error, Does.Contain(message));
    }

    [Test]
    public void TheDeviceTreeNodeFollowsTheWindowOptions()
    {
        var (exitCode, output, _) = Run("--platform", "arm64", "--device-tree", "--ecam-base", "0x20000000", "--pio-base", "0x3f000000");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero);
            Assert.That(output, Does.StartWith("pcie@20000000 {"));
            Assert.That(output, Does.Contain("reg = <0x0 0x20000000 0x0 0x100000>;"));
            Assert.That(output, Does.Contain("0x01000000 0x0 0x1000 0x0 0x3f001000 0x0 0xf000"), "the I/O range lies in the PIO aperture");
        }
    }

    [Test]
    public void TheDeviceTreeFollowsThePrefetchableWindowOptions()
    {
        var (exitCode, output, _) = Run("--platform", "arm64", "--device-tree", "--prefetch-base", "0x140000000", "--prefetch-size", "0x40000000");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero);
            Assert.That(output, Does.Contain("0x43000000 0x1 0x40000000 0x1 0x40000000 0x0 0x40000000"), "the prefetchable range is the one asked for");
        }
    }

    [TestCase("0")]
    [TestCase("65")]
    public void EduDmaBitsOutsideOneToSixtyFourAreRefused(string bits)
    {
        var (exitCode, _, error) = Run("--edu-dma-bits", bits);

        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(error, Does.Contain("--edu-dma-bits"));
    }

    [Test]
    public void TheDeviceTreeIsAnArm64Thing()
    {
        var (exitCode, _, error) = Run("--device-tree");

        Assert.That(exitCode, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--platform arm64"));
    }

    [Test]
    public void TheX86HostBridgeFunctionBelongsToQemu()
    {
        var (exitCode, _, error) = Run("--bdf", "00:00.0");

        Assert.That(exitCode, Is.EqualTo(2));
        Assert.That(error, Does.Contain("00:00.0"));
    }

    [Test]
    public void OnAMachineWithoutXenDomainSaysWhereToRun()
    {
        Assume.That(File.Exists(IoreqSdk.Xen.XenHypervisor.PrivcmdPath), Is.False, "this machine runs on Xen");
        var (exitCode, output, error) = Run("--device", "serial", "--domain", "3");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.EqualTo(2));
            Assert.That(error, Does.Contain("/dev/xen/privcmd does not exist").And.Contain("dom0"));
            Assert.That(output, Is.Empty);
        }
    }

    internal static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int exitCode = DemuCommand.Create().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exitCode, output.ToString(), error.ToString());
    }
}
