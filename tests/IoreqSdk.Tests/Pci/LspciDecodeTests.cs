using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using IoreqSdk.Abi;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Pci;

/// <summary>
/// The test device's configuration space, read by the simulated guest, written as an <c>lspci -xxx</c> dump and
/// decoded by pciutils' own <c>lspci -F</c>: an independent reader must find the BAR kinds and capabilities.
/// </summary>
[TestFixture]
public sealed class LspciDecodeTests
{
    [Test]
    public void PciutilsDecodesTheDevicesConfigSpace()
    {
        var slot = new PciSbdf(0, 0, 3, 0);
        using var guest = new PciGuest(GuestArchitecture.X86, b => b.AddDevice(new ProbeDevice(), 3));
        var dump = new StringBuilder("00:03.0 Unassigned class [ff00]: probe\n");
        for (int line = 0; line < 16; line++)
        {
            dump.Append(CultureInfo.InvariantCulture, $"{line * 16:x2}:");
            for (int i = 0; i < 16; i += 4)
            {
                uint dword = guest.Config(slot, (line * 16) + i, 4);
                for (int b = 0; b < 4; b++)
                {
                    dump.Append(CultureInfo.InvariantCulture, $" {(byte)(dword >> (8 * b)):x2}");
                }
            }

            dump.Append('\n');
        }

        string path = Path.Combine(Path.GetTempPath(), $"ioreqsdk-lspci-{Environment.ProcessId}.txt");
        File.WriteAllText(path, dump.Append('\n').ToString());
        (int exitCode, string output, string errors) result;
        try
        {
            result = ExternalProcess.Run("lspci", ["-F", path, "-vvv", "-nn"]);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            ExternalProcess.Unavailable("lspci is not installed", "pciutils");
            return;
        }
        finally
        {
            File.Delete(path);
        }

        string lspci = result.output;
        TestContext.Out.WriteLine(lspci);
        AssignedBar[] bars = guest.Function(slot).Bars.ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.exitCode, Is.Zero, result.errors);
            Assert.That(lspci, Does.Contain("[1af4:10f0] (rev 02)"));
            Assert.That(lspci, Does.Contain("Control: I/O+ Mem+ BusMaster+"));
            Assert.That(lspci, Does.Contain("Interrupt: pin A"));
            Assert.That(lspci, Does.Contain($"Region 0: I/O ports at {bars[0].BusAddress:x}"));
            Assert.That(lspci, Does.Contain($"Region 1: Memory at {bars[1].BusAddress:x} (32-bit, non-prefetchable)"));
            Assert.That(lspci, Does.Contain($"Region 2: Memory at {bars[2].BusAddress:x} (64-bit, prefetchable)"));
            Assert.That(lspci, Does.Contain($"Expansion ROM at {bars[3].BusAddress:x}"));
            Assert.That(lspci, Does.Contain("Capabilities: [40] MSI: Enable- Count=1/2 Maskable+ 64bit+"));
            Assert.That(lspci, Does.Contain("MSI-X: Enable- Count=4 Masked-"));
            Assert.That(lspci, Does.Contain("Vector table: BAR=1 offset=00000800"));
            Assert.That(lspci, Does.Contain("PBA: BAR=1 offset=00000c00"));
            Assert.That(lspci, Does.Contain("Express (v2) Endpoint"));
            Assert.That(lspci, Does.Contain("Power Management version 3"));
            Assert.That(lspci, Does.Contain("Vendor Specific Information: Len=06"));
        }
    }
}
