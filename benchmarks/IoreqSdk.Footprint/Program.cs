using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Virtio;

// footprint DEVICES: one process serving DEVICES virtio-blk disks, each its own guest's (the xenstore backend daemon's
// shape: one ioreq server per guest device), each brought up by its guest's driver and given one 4 KiB read. It prints
// its resident memory then, and how much of it is the simulated guests' RAM (the rings and buffers their drivers wrote:
// a real guest's RAM is not in the device model's RSS), so what is left is the daemon's.
if (args.Length != 1 || !int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count is < 1 or > 256)
{
    Console.Error.WriteLine("usage: footprint DEVICES   (1 to 256 virtio-blk devices, one simulated guest each)");
    return 2;
}

string image = Path.Combine(Path.GetTempPath(), $"ioreq-footprint-{Environment.ProcessId}.img");
File.WriteAllBytes(image, new byte[1 << 20]);
var guests = new List<SimulatedVirtioGuest>(count);
try
{
    for (int i = 0; i < count; i++)
    {
        // Arm64 and virtio-mmio: what libxl gives a guest's virtio disk, and so what the daemon serves.
        VirtioBlkDevice disk = VirtioBlkDevice.Open(image, new VirtioBlkOptions { ReadOnly = true });
        SimulatedVirtioGuest guest = SimulatedVirtioGuest.Create(disk, VirtioTransportKind.Mmio, GuestArchitecture.Arm64);
        guests.Add(guest);
        if (!Read(guest))
        {
            Console.Error.WriteLine($"footprint: device {i} did not complete its read");
            return 1;
        }
    }

    long guestRam = 0;
    var ranges = new List<(ulong Start, ulong End)>(count);
    foreach (SimulatedVirtioGuest guest in guests)
    {
        ranges.Add(RamRange(guest));
    }

    foreach ((ulong start, ulong end, long rss) in Mappings())
    {
        foreach ((ulong ramStart, ulong ramEnd) in ranges)
        {
            if (start < ramEnd && ramStart < end)
            {
                guestRam += rss;
                break;
            }
        }
    }

    long vmRss = Status("VmRSS:");
    long allocated = GC.GetTotalAllocatedBytes();
    int collections = GC.CollectionCount(0);
    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
    Console.WriteLine(FormattableString.Invariant($"devices {count} rss_kb {vmRss} hwm_kb {Status("VmHWM:")} guest_ram_kb {guestRam} served_kb {vmRss - guestRam} threads {Status("Threads:")} allocated_kb {allocated / 1024} gcs {collections} heap_after_gc_kb {GC.GetGCMemoryInfo().HeapSizeBytes / 1024} rss_after_gc_kb {Status("VmRSS:")}"));
    return 0;
}
finally
{
    foreach (SimulatedVirtioGuest guest in guests)
    {
        IDisposable? device = guest.Device as IDisposable;
        guest.Dispose();
        device?.Dispose();
    }

    File.Delete(image);
}

// One virtio-blk read (virtio 1.2 §5.2.6: header, data, status) of sector 0 on queue 0; whether the device answered OK.
static bool Read(SimulatedVirtioGuest guest)
{
    const int HeaderSize = 16;
    const int Length = 4096;
    ulong header = guest.Driver.Allocate(HeaderSize);
    ulong buffer = guest.Driver.Allocate(Length, 512);
    ulong status = guest.Driver.Allocate(1);
    Span<byte> bytes = stackalloc byte[HeaderSize];
    bytes.Clear(); // VIRTIO_BLK_T_IN, sector 0
    guest.Memory.TryWrite(header, bytes);
    guest.Memory.Span(status, 1)[0] = 0xFF;
    GuestBuffer[] chain = [new(header, HeaderSize, false), new(buffer, Length, true), new(status, 1, true)];
    guest.Driver.Submit(0, chain);
    return guest.Driver.WaitForUsed(0, out _, out _, TimeSpan.FromSeconds(10)) && guest.Memory.Span(status, 1)[0] == 0;
}

static unsafe (ulong Start, ulong End) RamRange(SimulatedVirtioGuest guest)
{
    Span<byte> ram = guest.Xen.Ram;
    ulong start = (ulong)Unsafe.AsPointer(ref MemoryMarshal.GetReference(ram));
    return (start, start + (ulong)ram.Length);
}

// /proc/self/smaps: each mapping's range and its resident kB.
static IEnumerable<(ulong Start, ulong End, long Rss)> Mappings()
{
    ulong start = 0, end = 0;
    foreach (string line in File.ReadLines("/proc/self/smaps"))
    {
        int dash = line.IndexOf('-');
        int space = line.IndexOf(' ');
        if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong s)
            && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong e))
        {
            (start, end) = (s, e);
        }
        else if (line.StartsWith("Rss:", StringComparison.Ordinal))
        {
            yield return (start, end, long.Parse(line.AsSpan(4).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture));
        }
    }
}

static long Status(string field)
{
    foreach (string line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith(field, StringComparison.Ordinal))
        {
            return long.Parse(line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
        }
    }

    return -1;
}
