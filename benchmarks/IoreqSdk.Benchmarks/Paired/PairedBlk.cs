using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using IoreqSdk.Benchmarks.Blk;
using IoreqSdk.Benchmarks.Loopback;

namespace IoreqSdk.Benchmarks.Paired;

/// <summary>
/// The virtio-blk end-to-end ratios, measured in pairs (<see cref="Pairs"/>): batches of <c>native/blk_roundtrip.c</c>'s
/// device model (server, worker: the same threads and system calls) alternate with batches through
/// <see cref="VirtioBlkLoopback"/> (an <see cref="Server.IoreqServer"/> serving VirtioBlkDevice on virtio-mmio). Both are
/// driven by the C file's guest (<c>blk_guest_run</c>) on this thread and CPU, each device model on the same CPU, so
/// the difference is the device side alone. 4 KiB random reads and 64 KiB sequential reads (also given as MB/s by
/// report.py).
/// </summary>
internal static unsafe class PairedBlk
{
    public static bool Run(nint library, bool isShort)
    {
        var native = new Native(library);
        int pairs = isShort ? 5 : 30;
        // Guest on CPU 0 (this thread); the server's loop and the device's I/O thread where the scenario puts them.
        var scenarios = new List<(string Name, Notification Notification, int ServerCpu, int WorkerCpu, int Batch)>
        {
            ("eventfd-1core", Notification.EventFd, 0, 0, 200),
        };
        if (Environment.ProcessorCount >= 2)
        {
            scenarios.Add(("eventfd-2cores", Notification.EventFd, 1, 1, 20));
        }

        if (Environment.ProcessorCount >= 3)
        {
            // Busy-polling needs a core per spinning thread and one for the I/O thread, which sleeps between requests:
            // on two cores it would preempt a spinner on every request and measure the scheduler's time slice.
            scenarios.Insert(0, ("busy-3cores", Notification.BusyPoll, 1, 2, 2_000));
        }
        else
        {
            Console.Error.WriteLine($"{Environment.ProcessorCount} CPU(s): the busy-poll blk pairs need three and are skipped.");
        }

        foreach (var scenario in scenarios)
        {
            bool busy = scenario.Notification == Notification.BusyPoll;
            using var blk = new VirtioBlkLoopback(scenario.Notification, scenario.ServerCpu, scenario.WorkerCpu);
            if (busy)
            {
                blk.Xen.Channel.Park();
            }

            foreach ((string kind, uint block, bool random) in new[] { ("4k-random", 4096u, true), ("64k-seq", 65536u, false) })
            {
                // The guest's state lives across the batches (its ring indices and its place in the sequence).
                BlkGuest* guest = (BlkGuest*)NativeMemory.AllocZeroed((nuint)sizeof(BlkGuest));
                LoopbackXen xen = blk.Xen;
                native.GuestInit(
                    guest,
                    (byte*)xen.GuestRam.Pointer,
                    xen.Page,
                    (uint*)xen.Channel.Injections,
                    busy ? 1 : 0,
                    xen.Channel.ServerEventFd,
                    xen.Channel.VcpuEventFd(0),
                    xen.Channel.GuestInterruptEventFd,
                    block,
                    random ? 1 : 0);
                int batch = block == 4096 ? scenario.Batch : Math.Max(10, scenario.Batch / 2);
                bool ok = Pairs.Measure(
                    $"blk-{kind}-{scenario.Name}",
                    pairs,
                    () => RunFloor(native, busy, scenario.ServerCpu, scenario.WorkerCpu, block, random, batch),
                    () => RunSdk(native, blk, guest, busy, batch));
                NativeMemory.Free(guest);
                if (!ok)
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>One batch of the C device model, its threads started for the batch on the server's CPU.</summary>
    private static double RunFloor(Native native, bool busy, int cpu, int workerCpu, uint block, bool random, int batch)
    {
        if (native.FloorStart(busy ? 1 : 0, cpu, workerCpu, VirtioBlkLoopback.ImagePath, block, random ? 1 : 0) != 0)
        {
            throw new InvalidOperationException("blk_floor_start failed.");
        }

        try
        {
            if (native.FloorRun(Math.Max(1, batch / 10)) < 0)   // untimed: the new threads settle on their CPU
            {
                return -1;
            }

            return native.FloorRun(batch);
        }
        finally
        {
            native.FloorStop();
        }
    }

    /// <summary>One batch through the server, driven by the C guest; a busy-polling server spins only for its batch.</summary>
    private static double RunSdk(Native native, VirtioBlkLoopback blk, BlkGuest* guest, bool busy, int batch)
    {
        if (busy)
        {
            blk.Xen.Channel.Unpark();
        }

        try
        {
            if (native.GuestRun(guest, Math.Max(1, batch / 10)) < 0)   // untimed, as the C side's
            {
                return -1;
            }

            return native.GuestRun(guest, batch);
        }
        finally
        {
            if (busy)
            {
                blk.Xen.Channel.Park();
            }
        }
    }

    /// <summary>blk_roundtrip.c's <c>struct blk_guest</c>, field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct BlkGuest
    {
        public byte* Ram;
        public nint Page;
        public uint* Injections;
        public int Busy;
        public int ToServer;
        public int FromServer;
        public int InterruptFd;
        public uint InterruptsSeen;
        public uint Block;
        public int Random;
        public ushort AvailIndex;
        public ushort LastUsed;
        public uint Pad;
        public ulong Rng;
        public ulong Next;
    }

    private sealed class Native
    {
        private readonly delegate* unmanaged<BlkGuest*, byte*, nint, uint*, int, int, int, int, uint, int, void> _guestInit;
        private readonly delegate* unmanaged<BlkGuest*, long, double> _guestRun;
        private readonly delegate* unmanaged<int, int, int, byte*, uint, int, int> _floorStart;
        private readonly delegate* unmanaged<long, double> _floorRun;
        private readonly delegate* unmanaged<void> _floorStop;

        public Native(nint library)
        {
            _guestInit = (delegate* unmanaged<BlkGuest*, byte*, nint, uint*, int, int, int, int, uint, int, void>)NativeLibrary.GetExport(library, "blk_guest_init");
            _guestRun = (delegate* unmanaged<BlkGuest*, long, double>)NativeLibrary.GetExport(library, "blk_guest_run");
            _floorStart = (delegate* unmanaged<int, int, int, byte*, uint, int, int>)NativeLibrary.GetExport(library, "blk_floor_start");
            _floorRun = (delegate* unmanaged<long, double>)NativeLibrary.GetExport(library, "blk_floor_run");
            _floorStop = (delegate* unmanaged<void>)NativeLibrary.GetExport(library, "blk_floor_stop");
        }

        public void GuestInit(BlkGuest* guest, byte* ram, nint page, uint* injections, int busy, int toServer, int fromServer, int interruptFd, uint block, int random) =>
            _guestInit(guest, ram, page, injections, busy, toServer, fromServer, interruptFd, block, random);

        public double GuestRun(BlkGuest* guest, long iterations) => _guestRun(guest, iterations);

        public int FloorStart(int busy, int cpu, int workerCpu, string imagePath, uint block, int random)
        {
            // A NUL-terminated UTF-8 path, kept only for the call (the C side opens the file in it).
            byte[] path = new byte[System.Text.Encoding.UTF8.GetByteCount(imagePath) + 1];
            System.Text.Encoding.UTF8.GetBytes(imagePath, 0, imagePath.Length, path, 0);
            fixed (byte* p = path)
            {
                return _floorStart(busy, cpu, workerCpu, p, block, random);
            }
        }

        public double FloorRun(long iterations) => _floorRun(iterations);

        public void FloorStop() => _floorStop();
    }
}
