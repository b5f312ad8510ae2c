using System.Text;
using IoreqSdk.Hypervisor;
using IoreqSdk.Pci;
using IoreqSdk.Simulation;

namespace MyDevice;

/// <summary>The device on a simulated guest, driven as its driver would: no Xen needed.</summary>
internal static class SimulatedRun
{
    public static int Run(GuestArchitecture architecture)
    {
        using var guest = SimulatedPciGuest.Create(new ChecksumDevice(), architecture);
        Console.WriteLine($"{architecture} guest: {guest.Function.Address} {guest.Function.VendorId:x4}:{guest.Function.DeviceId:x4}, BAR 0 at 0x{guest.Bar(0).CpuAddress:x}");

        // The driver enables bus mastering, puts a buffer in RAM and asks for its checksum.
        uint command = guest.ReadConfig(PciConfigRegisters.Command, 2);
        guest.WriteConfig(PciConfigRegisters.Command, 2, command | PciConfigRegisters.CommandBusMaster);
        byte[] text = Encoding.ASCII.GetBytes("hello from the guest");
        ulong buffer = guest.Xen.RamBase + 0x10000;
        text.CopyTo(guest.Xen.Ram.Slice(0x10000));
        guest.WriteBar(0, ChecksumDevice.AddressLow, 4, (uint)buffer);
        guest.WriteBar(0, ChecksumDevice.AddressHigh, 4, buffer >> 32);
        guest.WriteBar(0, ChecksumDevice.Length, 4, (ulong)text.Length);
        guest.WriteBar(0, ChecksumDevice.Doorbell, 4, 1);

        if (!SimulatedPciGuest.WaitUntil(() => guest.Intx!.Assertions > 0))
        {
            Console.Error.WriteLine("MyDevice: no interrupt from the device within 10 s");
            return 1;
        }

        ulong status = guest.ReadBar(0, ChecksumDevice.Status, 4);
        ulong sum = guest.ReadBar(0, ChecksumDevice.Sum, 4);
        guest.WriteBar(0, ChecksumDevice.Status, 4, status);
        Console.WriteLine($"interrupt on {guest.Intx!.Description}; status {status}, checksum of \"{Encoding.ASCII.GetString(text)}\": {sum}");
        Console.WriteLine($"{guest.Server.Statistics.MmioRequests} MMIO and {guest.Server.Statistics.PciConfigRequests} PCI config requests served");
        return status == ChecksumDevice.StatusDone ? 0 : 1;
    }
}
