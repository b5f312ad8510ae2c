using IoreqSdk.Hosting;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Virtio.Pci;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MyDevice;

// --transport mmio (default) or pci. With --domain N: serve guest N on real Xen (in dom0, as root) until Ctrl-C,
// SIGTERM or the guest's end; the ioreq server is destroyed on the way out whatever happens. Without it: a simulated
// guest's virtio driver uses the device.
bool pci = Value("--transport") == "pci";
if (!args.Contains("--domain"))
{
    return SimulatedRun.Run(
        Value("--platform") == "arm64" ? GuestArchitecture.Arm64 : GuestArchitecture.X86,
        pci ? VirtioTransportKind.Pci : VirtioTransportKind.Mmio);
}

var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddCommandLine(args, IoreqServerHostOptions.CommandLineSwitches);   // --domain, --platform, --mode
IoreqServerBuilder server = builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName));
if (pci)
{
    server.AddPciDevice(_ => new VirtioPciTransport(new EntropyDevice()), deviceNumber: 5);
}
else
{
    // Arm64: Xen's first virtio-mmio slot and SPI (libxl's layout); x86: a free MMIO page and ISA IRQ 5.
    server.AddDevice((_, ioreq) => ioreq.Platform.Architecture == GuestArchitecture.Arm64
        ? new VirtioMmioTransport(new EntropyDevice(), VirtioMmioTransport.Arm64Address(0), ioreq.CreateInterruptLine(VirtioMmioTransport.Arm64Spi(0)))
        : new VirtioMmioTransport(new EntropyDevice(), 0xFEB0_0000, ioreq.CreateInterruptLine(5)));
}

try
{
    await builder.Build().RunAsync();
    return 0;
}
catch (InvalidOperationException e)
{
    // The host logged the failed start; this is the one line that says what to do.
    Console.Error.WriteLine($"MyDevice: {e.Message}");
    return 1;
}

string? Value(string option)
{
    int at = Array.IndexOf(args, option);
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
}
