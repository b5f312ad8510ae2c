using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Store;
using IoreqSdk.Virtio.Mmio;

namespace Demu.Serve;

/// <summary>
/// <c>demu serve --simulate</c>: the daemon on a simulated xenstore and simulated Xen, driven through one guest's life as
/// Xen 4.17's toolstack drives it: the guest built, its virtio disk written as libxl writes it, libxl's wait for InitWait,
/// the guest reading its disk's registers, the guest destroyed, the device closed — on the same host composition as on real Xen (<see cref="ServeHost"/>).
/// </summary>
internal static class SimulatedServe
{
    private const ushort Guest = 1;
    private const uint MmioMagic = 0x7472_6976;

    public static async Task<int> RunAsync(ServeSettings settings, CancellationToken cancellation)
    {
        string image = settings.Disk ?? Path.Combine(Path.GetTempPath(), $"demu-serve-{Environment.ProcessId}.img");
        bool scratch = settings.Disk is null;
        if (scratch)
        {
            File.WriteAllBytes(image, new byte[1 << 20]);
        }

        var store = new SimulatedXenStore();
        var clock = new SimulatedClock();
        using var toolstack = new SimulatedToolstack(store, clock);
        using var guest = new SimulatedHypervisor(new SimulationOptions { Architecture = GuestArchitecture.Arm64, Domain = Guest });
        var hypervisors = new SimulatedBackendHypervisors();
        hypervisors.Add(guest);
        toolstack.CreateDomain(Guest);
        try
        {
            using ServeHost host = ServeHost.Create(settings, store.Connect(settings.BackendDomain), hypervisors);
            int started = await host.StartAsync(cancellation).ConfigureAwait(false);
            if (started != 0)
            {
                return started;
            }

            bool served = await ToolstackAsync(toolstack, clock, guest, settings, image, host.Stopping).ConfigureAwait(false);

            // --once: the device closing (the guest's destruction) stops the host by itself; without it, the run is over now.
            if (!settings.Once || !served)
            {
                host.Stop();
            }

            int exit = await host.WaitAsync().ConfigureAwait(false);
            return served ? exit : 1;
        }
        finally
        {
            if (scratch)
            {
                File.Delete(image);
            }
        }
    }

    private static async Task<bool> ToolstackAsync(SimulatedToolstack toolstack, SimulatedClock clock, SimulatedHypervisor guest, ServeSettings settings, string image, CancellationToken cancellation)
    {
        ulong slot = VirtioMmioTransport.Arm64WindowBase;
        string backend = toolstack.AddVirtioDisk(Guest, image, slot, VirtioMmioTransport.Arm64FirstSpi, backend: settings.BackendDomain);
        settings.Output.WriteLine($"demu serve --simulate: toolstack wrote {backend} (state 1); waiting for InitWait as libxl does");

        // libxl's 10 s, in real time here: the simulated toolstack's clock is moved on when they have passed.
        Task<bool> initWait = toolstack.WaitForInitWaitAsync(backend, cancellation);
        using var timer = new Timer(_ => clock.Advance(IoreqSdk.Xenstore.Backend.BackendDeviceDescription.InitTimeout), null, IoreqSdk.Xenstore.Backend.BackendDeviceDescription.InitTimeout, Timeout.InfiniteTimeSpan);
        if (!await initWait.ConfigureAwait(false))
        {
            settings.Error.WriteLine("demu serve --simulate: no InitWait within libxl's 10 s");
            return false;
        }

        uint magic = (uint)guest.Vcpu(0).ReadMmio(slot, 4);
        uint device = (uint)guest.Vcpu(0).ReadMmio(slot + 8, 4);
        settings.Output.WriteLine(FormattableString.Invariant($"demu serve --simulate: InitWait; the guest reads magic 0x{magic:x8}, device id {device} at 0x{slot:x}"));
        if (magic != MmioMagic || device != 2)
        {
            settings.Error.WriteLine("demu serve --simulate: the guest does not see a virtio-blk device at its slot");
            return false;
        }

        toolstack.DestroyDomain(Guest);
        settings.Output.WriteLine("demu serve --simulate: toolstack destroyed the guest");
        return true;
    }
}
