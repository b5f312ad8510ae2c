using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Hosting;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Infrastructure;
using IoreqSdk.Virtio;
using IoreqSdk.Xen;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NUnit.Framework;

namespace IoreqSdk.Tests.Docs;

/// <summary>
/// Each package's README example, as written there: compiled here (and run where it needs no Xen), and a check that the
/// README still says what this file compiles. Between "README:" and "end README:" this file holds the README's code
/// line for line, less its using directives; lines marked "scaffold" are what a snippet needs to sit in a test class.
/// </summary>
[TestFixture]
public sealed class PackageReadmeTests
{
    [TestCase("src/IoreqSdk/README.md")]
    [TestCase("src/IoreqSdk.Simulation/README.md")]
    [TestCase("src/IoreqSdk.Virtio/README.md")]
    [TestCase("src/IoreqSdk.Devices/README.md")]
    [TestCase("src/IoreqSdk.Hosting/README.md")]
    public void TheReadmeShowsTheCodeThisFileCompiles(string readme)
    {
        string root = Repository.Root();
        string markdown = File.ReadAllText(Path.Combine(root, readme));
        Match block = Regex.Match(markdown, "```csharp\n(.*?)```", RegexOptions.Singleline);
        Assert.That(block.Success, Is.True, $"{readme} has a C# example");

        string source = File.ReadAllText(Path.Combine(root, "tests/IoreqSdk.Tests/Docs/PackageReadmeTests.cs"));
        int start = source.IndexOf($"// README: {readme}\n", StringComparison.Ordinal);
        int end = source.IndexOf($"// end README: {readme}\n", StringComparison.Ordinal);
        Assert.That(start >= 0 && end > start, Is.True, $"this file holds {readme}'s example");

        Assert.That(Lines(source.Substring(start, end - start)), Is.EqualTo(Lines(block.Groups[1].Value)), $"{readme}'s example is the code compiled here");
    }

    [Test]
    public void TheSimulationReadmeExampleRunsOnBothPlatforms([Values] GuestArchitecture architecture) =>
        TheScratchRegisterHoldsWhatTheDriverWrote(architecture);

    [Test]
    public void TheVirtioReadmeDeviceFillsBuffersWithZerosOnEitherTransport([Values] VirtioTransportKind transport, [Values] GuestArchitecture architecture)
    {
        using var guest = SimulatedVirtioGuest.Create(new ZeroSource(), transport, architecture);
        ulong buffer = guest.Driver.Allocate(64);
        guest.Memory.Span(buffer, 64).Fill(0xAA);
        guest.Driver.Submit(queue: 0, [new GuestBuffer(buffer, 64, deviceWritable: true)]);

        uint length = 0;
        Assert.That(SimulatedVirtioGuest.WaitUntil(() => guest.Driver.TryTakeUsed(0, out _, out length)), Is.True);
        Assert.That(length, Is.EqualTo(64u));
        Assert.That(guest.Memory.Span(buffer, 64).ToArray(), Is.All.Zero);
    }

    // The README's lines, trimmed, less blank lines, using directives and this file's scaffolding.
    private static List<string> Lines(string code) => code.Split('\n')
        .Select(line => line.Trim())
        .Where(line => line.Length > 0
            && !line.StartsWith("// README:", StringComparison.Ordinal)
            && !line.EndsWith("// scaffold", StringComparison.Ordinal)
            && !Regex.IsMatch(line, @"^using [A-Za-z0-9.]+;$"))
        .ToList();

    // README: src/IoreqSdk/README.md
    internal static async Task ServeTheScratchRegister(CancellationToken cancellationToken) // scaffold
    { // scaffold
        using var xen = XenHypervisor.Open();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = 5 });
        var bridge = new PciHostBridge(server, GuestPlatform.For(xen.Architecture));
        bridge.AddDevice(new ScratchRegisterDevice(), deviceNumber: 5);
        await server.RunAsync(cancellationToken);   // serves until cancelled, then destroys the ioreq server
    } // scaffold

    public sealed class ScratchRegisterDevice : PciDevice
    {
        private ulong _scratch;

        public ScratchRegisterDevice()
            : base("scratch", new PciIdentity { VendorId = 0x1234, DeviceId = 0x0001 }) => AddMemoryBar(0, 0x1000);

        protected override ulong ReadBar(PciBar bar, ulong offset, int size) => offset == 0 ? _scratch : ulong.MaxValue;

        protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value) => _scratch = offset == 0 ? value : _scratch;
    }

    // end README: src/IoreqSdk/README.md

    // README: src/IoreqSdk.Simulation/README.md
    [Test]
    public void TheScratchRegisterHoldsWhatTheDriverWrote([Values] GuestArchitecture architecture)
    {
        using var guest = SimulatedPciGuest.Create(new ScratchRegisterDevice(), architecture);
        guest.WriteBar(0, offset: 0, size: 4, value: 0xC0FFEE);
        Assert.That(guest.ReadBar(0, offset: 0, size: 4), Is.EqualTo(0xC0FFEEUL));
        Assert.That(guest.Xen.CrashReason, Is.Null, "the device model kept to Xen's protocol");
    }

    // end README: src/IoreqSdk.Simulation/README.md

    // README: src/IoreqSdk.Virtio/README.md
    public sealed class ZeroSource : VirtioDevice
    {
        private const int MaxBuffersPerPass = 64;   // a driver posting without end must not hold the loop
        private readonly VirtioDescriptorChain _chain = new();
        private readonly byte[] _zeros = new byte[4096];

        public ZeroSource()
            : base(deviceType: 4, VirtioFeatures.EventIndex, queueMaxSizes: [256], configSize: 0)
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
                    int length = (int)Math.Min((ulong)_zeros.Length, _chain.WritableLength);
                    queue.Push(_chain, _chain.TryWrite(0, _zeros.AsSpan(0, length)) ? (uint)length : 0);
                    if (--budget == 0)
                    {
                        YieldPass(queue);   // signal, and continue in a later pass
                        return;
                    }
                }
            }
            while (queue.EnableNotifications());

            queue.SignalUsed();
        }
    }

    // end README: src/IoreqSdk.Virtio/README.md

    // README: src/IoreqSdk.Devices/README.md
    internal static async Task ServeEdu(CancellationToken cancellationToken) // scaffold
    { // scaffold
        using var xen = XenHypervisor.Open();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = 5 });
        var bridge = new PciHostBridge(server, new X86Platform());     // or new Arm64Platform()
        bridge.AddDevice(new EduDevice(), deviceNumber: 5);
        await server.RunAsync(cancellationToken);
    } // scaffold

    // end README: src/IoreqSdk.Devices/README.md

    // README: src/IoreqSdk.Hosting/README.md
    internal static async Task HostTheScratchRegister(string[] args) // scaffold
    { // scaffold
        var builder = Host.CreateApplicationBuilder(args);
        builder.Configuration.AddCommandLine(args, IoreqServerHostOptions.CommandLineSwitches);   // --domain 5, --platform arm64, --mode simulated
        builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName))
            .AddPciDevice(_ => new ScratchRegisterDevice(), deviceNumber: 5);
        await builder.Build().RunAsync();
    } // scaffold

    // end README: src/IoreqSdk.Hosting/README.md
}
