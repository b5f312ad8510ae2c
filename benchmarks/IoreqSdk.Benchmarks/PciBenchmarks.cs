using System;
using BenchmarkDotNet.Attributes;
using IoreqSdk.Abi;
using IoreqSdk.Benchmarks.Loopback;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks;

/// <summary>
/// PCI through the host bridge, busy-poll round trips over the loopback Xen: a configuration read as each platform
/// receives it (x86: Xen-decoded PCI_CONFIG; Arm64: an MMIO read of the bridge's ECAM window) and a read of an
/// MSI-X table entry, which the SDK serves itself.
/// </summary>
public class PciBenchmarks
{
    private const ulong BarAddress = 0xE100_0000;

    private LoopbackXen _xen = null!;
    private IoreqServer _server = null!;
    private PciSbdf _function;
    private ulong _ecam;

    [Params(GuestArchitecture.X86, GuestArchitecture.Arm64)]
    public GuestArchitecture Platform { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _xen = new LoopbackXen(Platform, 1, Notification.BusyPoll);
        _server = _xen.CreateServer();
        PciPlatform platform = Platform == GuestArchitecture.X86 ? new X86Platform() : new Arm64Platform();
        var bridge = new PciHostBridge(_server, platform);
        _function = bridge.AddDevice(new MsixDevice(), 3);
        _ecam = platform is Arm64Platform arm ? arm.EcamBase + ((ulong)_function.Device << 15) : 0;
        _server.Start();

        // Firmware's part: place BAR 0 and turn on memory decode, so the MSI-X table is reachable.
        uint bar = Platform == GuestArchitecture.X86 ? (uint)BarAddress : (uint)Arm64Platform.DefaultMemoryWindow.Base;
        ConfigWrite(PciConfigRegisters.Bar0, bar);
        ConfigWrite(PciConfigRegisters.Command, PciConfigRegisters.CommandMemory);
        if (Platform == GuestArchitecture.X86)
        {
            // The driver's part: program vector 0's address; reading it back proves the table is the SDK's.
            ulong entry = BarAddress + MsixDevice.TableOffset;
            _xen.RoundTrip(0, IoreqType.Copy, entry, 4, write: true, 0xFEE0_0000);
            if (MsixEntry(0) != 0xFEE0_0000)
            {
                throw new InvalidOperationException("The MSI-X table is not where the benchmark expects it.");
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _server.Dispose();
        _xen.Dispose();
    }

    [Benchmark]
    public ulong ConfigRead() => Platform == GuestArchitecture.X86
        ? _xen.RoundTrip(0, IoreqType.PciConfig, ((ulong)_function.Value << 32) | PciConfigRegisters.VendorId, 4, write: false, 0)
        : _xen.RoundTrip(0, IoreqType.Copy, _ecam + PciConfigRegisters.VendorId, 4, write: false, 0);

    /// <summary>An MSI-X table read (x86; Arm64 hides MSI-X, so there the same address is a plain BAR read).</summary>
    [Benchmark]
    public ulong MsixTableRead() => MsixEntry(0);

    private ulong MsixEntry(int vector)
    {
        ulong bar = Platform == GuestArchitecture.X86 ? BarAddress : Arm64Platform.DefaultMemoryWindow.Base;
        return _xen.RoundTrip(0, IoreqType.Copy, bar + MsixDevice.TableOffset + ((ulong)vector * 16), 4, write: false, 0);
    }

    private void ConfigWrite(int register, uint value)
    {
        if (Platform == GuestArchitecture.X86)
        {
            _xen.RoundTrip(0, IoreqType.PciConfig, ((ulong)_function.Value << 32) | (uint)register, 4, write: true, value);
        }
        else
        {
            _xen.RoundTrip(0, IoreqType.Copy, _ecam + (ulong)register, 4, write: true, value);
        }
    }

    /// <summary>A function with an MSI-X table (8 vectors) in BAR 0; the SDK owns the table.</summary>
    private sealed class MsixDevice : PciDevice
    {
        public const uint TableOffset = 0x1000;

        public MsixDevice()
            : base("msix", new PciIdentity { VendorId = 0x1af4, DeviceId = 0x10f1, ClassCode = 0xff0000, InterruptPin = 1 })
        {
            PciBar bar = AddMemoryBar(0, 0x4000, widths: AccessWidths.DWord);
            AddMsixCapability(8, bar, TableOffset, 0x2000);
        }

        protected override ulong ReadBar(PciBar bar, ulong offset, int size) => 0;

        protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
        {
        }
    }
}
