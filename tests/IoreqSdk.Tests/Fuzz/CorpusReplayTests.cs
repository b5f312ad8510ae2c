using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using IoreqSdk.Devices;
using IoreqSdk.Fuzzing;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Fuzz;

/// <summary>
/// Every input the fuzzer ever failed on (tests/IoreqSdk.Tests/Fuzz/Corpus/TARGET/, each named for the defect it
/// found) and every seed (fuzz/corpus/TARGET/), replayed through the harness AFL++ ran them through: each must now
/// pass every oracle — no crash, no hang, the domain alive, no mapping left, no device fault.
/// </summary>
[TestFixture]
public sealed class CorpusReplayTests
{
    private static IEnumerable<TestCaseData> Inputs()
    {
        string root = Repository.Root();
        foreach (string target in FuzzTargets.Names)
        {
            foreach (string folder in new[] { Path.Combine(root, "tests", "IoreqSdk.Tests", "Fuzz", "Corpus", target), Path.Combine(root, "fuzz", "corpus", target) })
            {
                if (!Directory.Exists(folder))
                {
                    continue;
                }

                foreach (string file in Directory.GetFiles(folder).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)).OrderBy(f => f, StringComparer.Ordinal))
                {
                    string relative = Path.GetRelativePath(root, file).Replace(Path.DirectorySeparatorChar, '/');
                    yield return new TestCaseData(target, relative).SetName($"Replay({relative})");
                }
            }
        }
    }

    [TestCaseSource(nameof(Inputs))]
    public void PassesEveryOracle(string target, string file)
    {
        byte[] input = File.ReadAllBytes(Path.Combine(Repository.Root(), file));

        Assert.That(() => FuzzTargets.All[target](input), Throws.Nothing, file);
    }

    [Test]
    public void EveryTargetHasSeeds()
    {
        string seeds = Path.Combine(Repository.Root(), "fuzz", "corpus");

        foreach (string target in FuzzTargets.Names)
        {
            string folder = Path.Combine(seeds, target);
            Assert.That(Directory.Exists(folder) ? Directory.GetFiles(folder) : [], Is.Not.Empty, target);
        }
    }

    [Test]
    public void TheDeviceFaultOracleFailsAnInputThatMakesADeviceThrow()
    {
        // The replay is worth something only if the oracles can fail: a register read that throws in device code is
        // contained by the server (the guest reads all-ones) and must still fail the input. The input: x86, one vCPU,
        // no ring; one guest load (operation 2) of 4 bytes at offset 0 of the first window.
        byte[] input = [0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00];
        Action<FuzzGuestSetup> throwingDevice = setup =>
        {
            setup.Server.AddDevice(new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { ThrowAt = _ => true });
            setup.Windows.Add(new FuzzWindow(RegionKind.Mmio, Mmio, 0x1000));
        };

        Assert.That(() => IoreqPathTarget.Run(input, throwingDevice), Throws.TypeOf<FuzzFailureException>().With.Message.Contains("escaped device code"));
    }

    [Test]
    public void TheSameInputOnAWellBehavedDevicePasses()
    {
        byte[] input = [0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00];
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);

        IoreqPathTarget.Run(input, setup =>
        {
            setup.Server.AddDevice(device);
            setup.Windows.Add(new FuzzWindow(RegionKind.Mmio, Mmio, 0x1000));
        });

        Assert.That(device.Calls, Is.EqualTo(new[] { (false, 0UL, 4, 0UL) }), "the input made exactly the one load it encodes");
    }

    [Test]
    public void TheXenstoreTargetServesADeviceAuthorsOwnBackendType()
    {
        // An author's factory, given to the target, is served from the toolstack's writes. The input: the service's
        // defaults; one device added (operation 0) of the author's shape (4) for guest 1 (frontend 0), device id 0
        // (index 1), slot 0, no PCI, no key changed.
        var factory = new CountingRngFactory();
        var keys = new Dictionary<string, string> { ["base"] = "0x2000000", ["irq"] = "33" };
        byte[] input = [0x00, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00];

        XenstoreTarget.Run(input, new XenstoreFuzzDevice(factory, keys));

        Assert.That(factory.Created, Is.EqualTo(1), "built once, then torn down when its guest was destroyed");
    }

    private const ulong Mmio = 0xFEB0_0000;

    /// <summary>A device author's factory: a virtio-rng on virtio-mmio at the keys' base and irq.</summary>
    private sealed class CountingRngFactory : IoreqSdk.Xenstore.Backend.IBackendDeviceFactory
    {
        public int Created { get; private set; }

        public string Type => "my-rng";

        public IDisposable? Create(IoreqSdk.Xenstore.Backend.BackendDeviceRequest request)
        {
            Created++;
            request.Server.AddDevice(new IoreqSdk.Virtio.Mmio.VirtioMmioTransport(new IoreqSdk.Devices.Virtio.Rng.VirtioRng(), request.RequireNumber("base"), request.Server.CreateInterruptLine((uint)request.RequireNumber("irq"))));
            return null;
        }
    }
}
