using IoreqSdk.Hosting;
using IoreqSdk.Hypervisor;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MyDevice;

// With --domain N: serve guest N on real Xen (in dom0, as root) at 00:05.0 until Ctrl-C, SIGTERM or the guest's end;
// the ioreq server is destroyed on the way out whatever happens. Without it: a simulated guest drives the device.
if (!args.Contains("--domain"))
{
    return SimulatedRun.Run(args.Contains("arm64") ? GuestArchitecture.Arm64 : GuestArchitecture.X86);
}

var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddCommandLine(args, IoreqServerHostOptions.CommandLineSwitches);   // --domain, --platform, --mode
builder.Services.AddIoreqServer(builder.Configuration.GetSection(IoreqServerHostOptions.SectionName))
    .AddPciDevice(_ => new ChecksumDevice(), deviceNumber: 5);
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
