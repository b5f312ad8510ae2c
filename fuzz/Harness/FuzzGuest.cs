using System;
using System.Collections.Generic;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Devices.Edu;
using IoreqSdk.Devices.PciSerial;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Platforms;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Virtio.Pci;

namespace IoreqSdk.Fuzzing;

/// <summary>A window of guest-physical or port space that a fuzz input's addresses are aimed at.</summary>
/// <param name="Space">Ports or memory.</param>
/// <param name="Base">The first address.</param>
/// <param name="Size">Its length in bytes.</param>
public readonly record struct FuzzWindow(RegionKind Space, ulong Base, ulong Size);

/// <summary>What a device author gets to put their own devices on the fuzzed guest with (before the server starts).</summary>
/// <param name="Server">The server (for <see cref="IoreqServer.AddDevice"/> of a plain <see cref="IDeviceModel"/>).</param>
/// <param name="Bridge">The platform's host bridge (for a <see cref="PciDevice"/>; the simulated firmware assigns its BARs).</param>
/// <param name="Windows">Where the fuzzer aims its accesses; the harness adds every BAR the firmware assigns.</param>
public sealed record FuzzGuestSetup(IoreqServer Server, PciHostBridge Bridge, List<FuzzWindow> Windows);

/// <summary>
/// One simulated guest per input, with the SDK's sample devices (edu at 00:03, the PCI 16550 at 00:04, virtio-rng over
/// PCI at 00:05 and over virtio-mmio) or a device author's own, enumerated by the simulated firmware; the oracles that
/// every target shares run on it.
/// </summary>
public sealed class FuzzGuest : IDisposable
{
    /// <summary>
    /// How long a vCPU waits for an answer before the harness calls the input a hang: far above any request's real
    /// service time, below AFL's 10-s execution limit, and long enough that a fuzzer starved at nice 19 on a loaded
    /// machine does not take scheduling delay for a hang (a 2-s limit did once).
    /// </summary>
    public static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The managed heap an input may leave behind before the harness calls the memory unbounded.</summary>
    public const long MaxHeapBytes = 512L << 20;

    private static readonly Dictionary<(GuestArchitecture, string), BringUp> s_bringUps = new();

    private readonly List<FuzzWindow> _windows = new();
    private bool _disposed;

    /// <summary>Creates the guest and starts its server.</summary>
    /// <param name="architecture">x86 or Arm64.</param>
    /// <param name="vcpus">1 to 4 vCPUs.</param>
    /// <param name="bufferedMode">The x86 server's ring mode, or the platform's default.</param>
    /// <param name="addDevices">The devices to fuzz; the sample devices unless given.</param>
    /// <param name="bringUpKey">
    /// Names the device set <paramref name="addDevices"/> always builds alike, so that the firmware's full enumeration
    /// runs once per process and later guests only get its BAR and command writes (see <see cref="BringUpPci"/>); without
    /// a key every guest is enumerated in full.
    /// </param>
    public FuzzGuest(GuestArchitecture architecture, int vcpus = 1, BufferedIoreqMode? bufferedMode = null, Action<FuzzGuestSetup>? addDevices = null, string? bringUpKey = null)
    {
        var options = new SimulationOptions { Architecture = architecture, VcpuCount = vcpus, RamSize = 8 << 20, ResponseTimeout = ResponseTimeout };
        Xen = new SimulatedHypervisor(options);
        VcpuCount = vcpus;
        try
        {
            Platform = GuestPlatform.For(architecture);
            Server = new IoreqServer(Xen, new IoreqServerOptions
            {
                Domain = Xen.Domain,
                Platform = Platform,
                BufferedMode = architecture == GuestArchitecture.X86 ? bufferedMode : null,
            });
            Bridge = new PciHostBridge(Server, Platform);
            var setup = new FuzzGuestSetup(Server, Bridge, _windows);
            (addDevices ?? AddSampleDevices)(setup);
            Server.Start();
            Functions = BringUpPci(architecture, bringUpKey ?? (addDevices is null ? "samples" : null));
            foreach (EnumeratedFunction function in Functions)
            {
                foreach (AssignedBar bar in function.Bars)
                {
                    bool port = bar.Kind == PciBarKind.Io && architecture == GuestArchitecture.X86;
                    _windows.Add(new FuzzWindow(port ? RegionKind.Port : RegionKind.Mmio, bar.CpuAddress, bar.Size));
                }
            }

            if (Platform is EcamPlatform ecam)
            {
                _windows.Add(new FuzzWindow(RegionKind.Mmio, ecam.EcamBase, 1UL << 20));
            }
        }
        catch
        {
            Server?.Dispose();
            Xen.Dispose();
            throw;
        }
    }

    /// <summary>The simulated Xen.</summary>
    public SimulatedHypervisor Xen { get; }

    /// <summary>The guest's vCPUs.</summary>
    public int VcpuCount { get; }

    /// <summary>The server under test.</summary>
    public IoreqServer Server { get; }

    /// <summary>The platform.</summary>
    public PciPlatform Platform { get; }

    /// <summary>The host bridge.</summary>
    public PciHostBridge Bridge { get; }

    /// <summary>What the firmware found on the bridge.</summary>
    public IReadOnlyList<EnumeratedFunction> Functions { get; }

    /// <summary>Where the fuzzer's accesses go.</summary>
    public IReadOnlyList<FuzzWindow> Windows => _windows;

    /// <summary>
    /// The firmware's bring-up. A full enumeration (every slot probed, every BAR sized) costs a few hundred vCPU
    /// round trips, most of an input's run time; its result depends only on the device set, so for a named set it runs
    /// once per process and is then replayed as what it leaves behind — each BAR programmed, the command register set —
    /// which is itself a correct bring-up (firmware that knows the sizes need not probe them).
    /// </summary>
    private IReadOnlyList<EnumeratedFunction> BringUpPci(GuestArchitecture architecture, string? key)
    {
        SimulatedVcpu cpu = Xen.Vcpu(0);
        if (key is null)
        {
            return SimulatedFirmware.EnumeratePci(cpu, Platform);
        }

        var pci = new GuestPci(cpu, Platform);
        (GuestArchitecture, string) cacheKey = (architecture, key);
        BringUp? known;
        lock (s_bringUps)
        {
            s_bringUps.TryGetValue(cacheKey, out known);
        }

        if (known is null)
        {
            IReadOnlyList<EnumeratedFunction> functions = SimulatedFirmware.EnumeratePci(cpu, Platform);
            var commands = new uint[functions.Count];
            for (int i = 0; i < functions.Count; i++)
            {
                commands[i] = pci.ReadConfig(functions[i].Address, PciConfigRegisters.Command, 2);
            }

            lock (s_bringUps)
            {
                s_bringUps[cacheKey] = new BringUp(functions, commands);
            }

            return functions;
        }

        for (int i = 0; i < known.Functions.Count; i++)
        {
            EnumeratedFunction function = known.Functions[i];
            foreach (AssignedBar bar in function.Bars)
            {
                switch (bar.Kind)
                {
                    case PciBarKind.ExpansionRom:
                        pci.WriteConfig(function.Address, PciConfigRegisters.ExpansionRom, 4, (uint)bar.BusAddress | 1);
                        break;
                    case PciBarKind.Memory64:
                        pci.WriteConfig(function.Address, PciConfigRegisters.Bar0 + (4 * bar.Index), 4, (uint)bar.BusAddress);
                        pci.WriteConfig(function.Address, PciConfigRegisters.Bar0 + (4 * bar.Index) + 4, 4, (uint)(bar.BusAddress >> 32));
                        break;
                    default:
                        pci.WriteConfig(function.Address, PciConfigRegisters.Bar0 + (4 * bar.Index), 4, (uint)bar.BusAddress);
                        break;
                }
            }

            pci.WriteConfig(function.Address, PciConfigRegisters.Command, 2, known.Commands[i]);
        }

        return known.Functions;
    }

    /// <summary>Aims later accesses at one more window (a BAR the input moved).</summary>
    /// <param name="window">The window.</param>
    public void AddWindow(FuzzWindow window)
    {
        if (_windows.Count < 64)
        {
            _windows.Add(window);
        }
    }

    /// <summary>The sample devices: edu, the PCI 16550, virtio-rng over PCI and over mmio.</summary>
    /// <param name="setup">The guest being built.</param>
    public static void AddSampleDevices(FuzzGuestSetup setup)
    {
        setup.Bridge.AddDevice(new EduDevice(), 3);
        setup.Bridge.AddDevice(new PciSerialDevice(_ => { }), 4);
        setup.Bridge.AddDevice(new VirtioPciTransport(new VirtioRng(new CountingRandomSource())), 5);
        GuestArchitecture architecture = setup.Bridge.Platform.Architecture;
        var shape = new SimulationOptions { Architecture = architecture };
        var mmio = new VirtioMmioTransport(new VirtioRng(new CountingRandomSource()), shape.VirtioMmioBase, setup.Server.CreateInterruptLine(shape.VirtioMmioLine));
        setup.Server.AddDevice(mmio);
        setup.Windows.Add(new FuzzWindow(RegionKind.Mmio, shape.VirtioMmioBase, VirtioMmioTransport.Size));
    }

    /// <summary>An address for an access: inside one of the windows (an offset of up to 64 KiB past it) or, one time in 16, any.</summary>
    /// <param name="input">The input.</param>
    /// <param name="space">Ports or memory.</param>
    /// <returns>The address.</returns>
    public ulong PickAddress(ref FuzzInput input, RegionKind space)
    {
        byte choice = input.U8();
        if ((choice & 0xF0) == 0xF0 || _windows.Count == 0)
        {
            return input.U64();
        }

        FuzzWindow window = _windows[choice % _windows.Count];
        if (window.Space != space)
        {
            return space == RegionKind.Port ? input.U16() : input.U64();
        }

        ulong offset = input.U16();
        return window.Base + (window.Size > 0 && offset < window.Size * 2 ? offset : offset % Math.Max(window.Size, 1));
    }

    /// <summary>An address in guest RAM (or, one time in 8, anywhere) for DMA and data pointers.</summary>
    /// <param name="input">The input.</param>
    /// <returns>The address.</returns>
    public ulong PickRamAddress(ref FuzzInput input)
    {
        byte choice = input.U8();
        return (choice & 7) == 7 ? input.U64() : Xen.RamBase + (input.U32() % (ulong)Xen.Ram.Length);
    }

    /// <summary>The oracles after each step: the domain lives (no protocol violation), memory is bounded.</summary>
    public void Check()
    {
        if (Xen.CrashReason is string reason)
        {
            throw new FuzzFailureException($"the simulated Xen crashed the domain: {reason}");
        }

        if (GC.GetTotalMemory(forceFullCollection: false) > MaxHeapBytes && GC.GetTotalMemory(forceFullCollection: true) > MaxHeapBytes)
        {
            throw new FuzzFailureException($"the managed heap grew past {MaxHeapBytes >> 20} MiB");
        }
    }

    /// <summary>Runs one guest step; a vCPU left unanswered is a hang, an Arm64 data abort is the guest's own fault.</summary>
    /// <param name="step">The access.</param>
    public void Step(Action step)
    {
        try
        {
            step();
        }
        catch (GuestDataAbortException)
        {
            // Arm64: an access nothing claims aborts in the guest, as on real Xen; the guest's problem, not the SDK's.
        }
        catch (TimeoutException e)
        {
            throw new FuzzFailureException("a request was left unanswered (hang)", e);
        }
        catch (GuestCrashedException e)
        {
            throw new FuzzFailureException($"the simulated Xen crashed the domain: {e.Message}", e);
        }

        Check();
    }

    /// <summary>The oracles at the end: no device fault, and after the server stopped no guest mapping left.</summary>
    public void Finish()
    {
        Check();
        long faults = Server.Statistics.DeviceFaults;
        Dispose();
        if (faults != 0)
        {
            throw new FuzzFailureException($"{faults} exception(s) escaped device code (contained by the server, but a defect of the device)");
        }

        if (Xen.OutstandingGuestMappings != 0)
        {
            throw new FuzzFailureException($"{Xen.OutstandingGuestMappings} guest mapping(s) leaked past the server's stop");
        }
    }

    /// <summary>Stops the server and the simulation.</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            Server.Dispose();
            Xen.Dispose();
        }
    }

    /// <summary>What the firmware's enumeration of a device set found, and the command register it left.</summary>
    private sealed record BringUp(IReadOnlyList<EnumeratedFunction> Functions, uint[] Commands);

    /// <summary>A deterministic entropy source: the same input, the same bytes.</summary>
    private sealed class CountingRandomSource : IRandomSource
    {
        private byte _next;

        public void Fill(Span<byte> destination)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                destination[i] = _next++;
            }
        }
    }
}
