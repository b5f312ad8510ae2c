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
    [TestCase("edu", "arm64", "7 passed, 0 failed", "(SPI 45)")]
    [TestCase("serial", "x86", "6 passed, 0 failed", "(IO-APIC level, INTA of 0000:00:05.0)")]
    [TestCase("serial", "arm64", "6 passed, 0 failed", "through the PIO aperture")]
    [TestCase("virtio-rng", "x86 --transport mmio", "7 passed, 0 failed", "virtio-mmio at 0xfeb00000, ISA IRQ 5")]
    [TestCase("virtio-rng", "arm64", "7 passed, 0 failed", "virtio-mmio at 0x2000000, SPI 33")]
    [TestCase("virtio-rng", "x86", "7 passed, 0 failed", "virtio-pci at 0000:00:05.0 (MSI-X)")]
    [TestCase("virtio-rng", "arm64 --transport pci", "7 passed, 0 failed", "virtio-pci at 0000:00:05.0 (INTx)")]
    [TestCase("virtio-blk", "x86", "10 passed, 0 failed", "virtio-pci at 0000:00:05.0 (MSI-X)")]
    [TestCase("virtio-blk", "arm64", "10 passed, 0 failed", "virtio-mmio at 0x2000000, SPI 33")]
    [TestCase("virtio-blk", "x86 --transport mmio", "10 passed, 0 failed", "SHA-256 of each written range")]
    [TestCase("virtio-blk", "arm64 --transport pci --read-only", "8 passed, 0 failed", "the read-only disk refuses every write (IOERR)")]
    [TestCase("virtio-console", "x86", "5 passed, 0 failed", "typed on the host arrived in receiveq0")]
    [TestCase("virtio-console", "arm64", "5 passed, 0 failed", "reached the host's stream")]
    public void RunsTheScriptedGuestDriverAndSummarises(string device, string platform, string checks, string detail)
    {
        var (exitCode, output, error) = Run(["--device", device, "--platform", .. platform.Split(' ')]);

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

    [Test]
    public void TheDeviceTreeNodeOfVirtioRngIsLibxlsForTheFirstVirtioMmioSlot()
    {
        var (exitCode, output, _) = Run("--platform", "arm64", "--device", "virtio-rng", "--device-tree");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero);
            Assert.That(output, Does.StartWith("virtio@2000000 {"));
            Assert.That(output, Does.Contain("compatible = \"virtio,mmio\";"));
            Assert.That(output, Does.Contain("interrupts = <0x0 0x1 0xf01>;"), "SPI 33, rising edge");
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

    [TestCase("--mmio-size", "--platform arm64 --mmio-size 0", "empty")]
    [TestCase("--mmio-base", "--platform arm64 --mmio-base 0xFFFFFFFFFFFFF000", "wraps past 2^64")]
    [TestCase("--mmio-base", "--platform arm64 --mmio-base 0xF8000000", "at or below 4 GiB")]
    [TestCase("--mmio-base", "--platform arm64 --mmio-base 0x23000800", "multiples of 4 KiB")]
    [TestCase("--ecam-base", "--platform arm64 --ecam-base 0xFFFFFFFFFFFF0000", "1 MiB boundary")]
    [TestCase("--ecam-base", "--platform arm64 --ecam-base 0x23000000", "overlaps the 32-bit memory window")]
    [TestCase("--pio-base", "--platform arm64 --pio-base 0x10000000", "overlaps the ECAM window")]
    [TestCase("--pio-base", "--platform arm64 --pio-base 0x3EFF0800", "multiples of 4 KiB")]
    [TestCase("--prefetch-base", "--platform arm64 --prefetch-base 0x23000000", "overlaps the 32-bit memory window")]
    [TestCase("--prefetch-size", "--platform arm64 --prefetch-size 0", "empty")]
    [TestCase("--intx-spi-base", "--platform arm64 --intx-spi-base 4294967295", "32 to 1016")]
    [TestCase("--intx-spi-base", "--platform arm64 --intx-spi-base 1017", "32 to 1016")]
    [TestCase("--intx-spi-base", "--platform arm64 --intx-spi-base 31", "32 to 1016")]
    [TestCase("--intx-spi-base", "--platform arm64 --intx-spi-base -1", "not a number")]
    [TestCase("--bdf", "--bdf 0001:00:05.0", "segment 0 only")]
    [TestCase("--domain", "--domain 70000", "1 to 32751")]
    [TestCase("--domain", "--domain -1", "1 to 32751")]
    [TestCase("--domain", "--domain 0", "0 is dom0")]
    [TestCase("--domain", "--domain 32752", "reserved")]
    [TestCase("--ecam-base", "--ecam-base 0x20000000", "Arm64 option")]
    [TestCase("--mmio-size", "--mmio-size 0x1000", "Arm64 option")]
    [TestCase("--prefetch-base", "--prefetch-base 0x100000000", "Arm64 option")]
    [TestCase("--intx-spi-base", "--intx-spi-base 48", "Arm64 option")]
    [TestCase("--serial-output", "--device serial --serial-output /nonexistent/x", "cannot open '/nonexistent/x'")]
    [TestCase("--serial-output", "--device edu --serial-output /tmp/demu-unused", "add --device serial")]
    [TestCase("--edu-dma-bits", "--device serial --edu-dma-bits 32", "add --device edu")]
    [TestCase("--edu-dma-bits", "--edu-dma-bits 65", "1 to 64 bits")]
    [TestCase("--no-restrict", "--no-restrict", "add --domain")]
    [TestCase("--busy-poll", "--busy-poll 50", "add --domain")]
    [TestCase("--busy-poll", "--domain 3 --busy-poll 1000001", "0 to 1000000 microseconds")]
    [TestCase("--busy-poll", "--domain 3 --busy-poll -5", "0 to 1000000 microseconds")]
    [TestCase("--loop-threads", "--loop-threads 2", "add --domain")]
    [TestCase("--loop-threads", "--domain 3 --loop-threads 0", "give 1 to 128")]
    [TestCase("--loop-threads", "--domain 3 --loop-threads 129", "give 1 to 128")]
    [TestCase("--bdf", "--device virtio-rng --transport mmio --bdf 00:06.0", "platform device with neither")]
    [TestCase("--ecam-base", "--device virtio-rng --platform arm64 --ecam-base 0x20000000", "platform device with neither")]
    [TestCase("--virtio-mmio-base", "--device virtio-rng --virtio-mmio-base 0xfeb00000", "add --transport mmio")]
    [TestCase("--virtio-mmio-base", "--device virtio-rng --transport mmio --virtio-mmio-base 0xfeb00100", "not a multiple of 0x200")]
    [TestCase("--virtio-mmio-irq", "--device virtio-rng --platform arm64 --virtio-mmio-irq 16", "not an SPI")]
    [TestCase("--transport", "--device edu --transport pci", "configures a virtio device")]
    [TestCase("--disk", "--device virtio-rng --disk /tmp/x.img", "add --device virtio-blk")]
    [TestCase("--disk", "--device virtio-blk --disk /nonexistent/x.img", "cannot serve '/nonexistent/x.img'")]
    [TestCase("--disk", "--device virtio-blk --domain 3", "give its path")]
    [TestCase("--serial-output", "--device virtio-rng --serial-output /tmp/demu-unused", "add --device serial")]
    [TestCase("--device", "--device floppy", "'floppy' not recognized. Must be one of: 'edu' 'serial'")]
    [TestCase("--domain", "--domain", "Required argument missing")]
    public void EveryConfigurationErrorIsOneLineNamingTheOptionAndExitCodeTwo(string option, string commandLine, string rule)
    {
        var (exitCode, output, error) = Run(commandLine.Split(' '));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.EqualTo(2));
            Assert.That(error, Does.StartWith("demu: ").And.Contain(option).And.Contain(rule));
            Assert.That(error.TrimEnd('\n').Split('\n'), Has.Length.EqualTo(1), "one line, no help text, no stack trace");
            Assert.That(error, Does.Not.Contain("   at ").And.Not.Contain("System."), "no exception or .NET type name");
            Assert.That(output, Is.Empty);
        }
    }

    [Test]
    public void ValidArm64WindowsStillRun()
    {
        var (exitCode, output, error) = Run("--platform", "arm64", "--ecam-base", "0x20000000", "--mmio-base", "0x30000000", "--mmio-size", "0x8000000", "--intx-spi-base", "1016");

        Assert.That(exitCode, Is.Zero, output + error);
        Assert.That(output, Does.Contain("7 passed, 0 failed"));
    }

    internal static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int exitCode = DemuCommand.InvokeAsync(args, new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null }).GetAwaiter().GetResult();
        return (exitCode, output.ToString(), error.ToString());
    }
}
