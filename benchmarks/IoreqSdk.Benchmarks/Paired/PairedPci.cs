using System;
using System.Diagnostics;
using IoreqSdk.Abi;
using IoreqSdk.Benchmarks.Loopback;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;

namespace IoreqSdk.Benchmarks.Paired;

/// <summary>
/// A PCI configuration read as each platform's guest makes it — x86: Xen's decoded PCI_CONFIG request; Arm64: an MMIO
/// read of the host bridge's ECAM window — measured in pairs on this thread, through each server's own dispatcher (the
/// same function behind a bridge on each; the servers are started with eventfds, their loops asleep). The round trip
/// around it is the same request on the same slot on both platforms and is measured by the round-trip rows. Measured
/// separately per platform (<see cref="PciBenchmarks"/>, a process each), the two round trips also differ by where the
/// host placed each process's threads (a busy-poll round trip's floor is 90 or 380 ns by placement), by more than the
/// decodes differ: the 3.5× the issue saw (163 against 577 ns), 1.14× in CI's short run of this change (466, 532).
/// Printed as <c>paired pci-config-ecam</c> with x86 in the first column.
/// </summary>
internal static class PairedPci
{
    private const uint Identity = 0x10F1_1AF4;   // device id << 16 | vendor id, what a read of register 0 returns

    public static bool Run(bool isShort)
    {
        using var x86 = new Side(GuestArchitecture.X86);
        using var arm64 = new Side(GuestArchitecture.Arm64);
        int batch = isShort ? 100_000 : 1_000_000;
        return Pairs.Measure("pci-config-ecam", isShort ? 5 : 30, () => x86.Batch(batch), () => arm64.Batch(batch));
    }

    private sealed class Side : IDisposable
    {
        private readonly LoopbackXen _xen;
        private readonly IoreqServer _server;
        private readonly IoDispatcher _dispatcher;
        private readonly IoRequest _read;

        public Side(GuestArchitecture architecture)
        {
            _xen = new LoopbackXen(architecture, 1, Notification.EventFd);
            _server = _xen.CreateServer();
            PciPlatform platform = architecture == GuestArchitecture.X86 ? new X86Platform() : new Arm64Platform();
            PciSbdf function = new PciHostBridge(_server, platform).AddDevice(new Function(), 3);
            _server.Start();
            _dispatcher = _server.Dispatcher;
            _read = architecture == GuestArchitecture.X86
                ? new IoRequest { Type = IoreqType.PciConfig, Address = ((ulong)function.Value << 32) | PciConfigRegisters.VendorId, Size = 4, Count = 1, Direction = IoreqDirection.Read }
                : new IoRequest { Type = IoreqType.Copy, Address = Arm64Platform.DefaultEcamBase + ((ulong)function.Device << 15) + PciConfigRegisters.VendorId, Size = 4, Count = 1, Direction = IoreqDirection.Read };
        }

        public double Batch(int count)
        {
            ulong sum = 0;
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < count; i++)
            {
                sum += _dispatcher.Dispatch(in _read);
            }

            double ns = Stopwatch.GetElapsedTime(start).TotalNanoseconds / count;
            return sum == (ulong)Identity * (ulong)count ? ns : -1;
        }

        public void Dispose()
        {
            _server.Dispose();
            _xen.Dispose();
        }
    }

    /// <summary>A function with one BAR and nothing else: the decode is what is measured.</summary>
    private sealed class Function : PciDevice
    {
        public Function()
            : base("function", new PciIdentity { VendorId = 0x1af4, DeviceId = 0x10f1, ClassCode = 0xff0000 })
        {
            _ = AddMemoryBar(0, 0x1000, widths: AccessWidths.DWord);
        }

        protected override ulong ReadBar(PciBar bar, ulong offset, int size) => 0;

        protected override void WriteBar(PciBar bar, ulong offset, int size, ulong value)
        {
        }
    }
}
