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
/// report.py). Then several queues (<see cref="RunQueues"/>).
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

        return RunQueues(native, isShort);
    }

    /// <summary>
    /// 1, 2 and 4 queues at once (VIRTIO_BLK_F_MQ), eventfd, the guest's threads on CPU 0 and the server's loop and the
    /// device's I/O thread on CPU 1: blk_roundtrip.c's multi-queue guest (one vCPU thread per queue, each with one 4 KiB
    /// random read in flight on its own queue, and an interrupt vCPU that reads and acknowledges the one virtio-mmio
    /// line and wakes the queues whose used ring moved) drives both sides; the time per read over all queues. One loop
    /// on both sides (queue work is the event loop's), one I/O thread.
    /// </summary>
    private static bool RunQueues(Native native, bool isShort)
    {
        if (Environment.ProcessorCount < 2)
        {
            Console.Error.WriteLine("One CPU: the multi-queue blk pairs need two and are skipped.");
            return true;
        }

        const int GuestCpu = 0;
        const int DeviceCpu = 1;
        int pairs = isShort ? 5 : 30;
        foreach (int queues in new[] { 1, 2, 4 })
        {
            long each = (isShort ? 40 : 120) / queues;
            using var blk = new VirtioBlkLoopback(Notification.EventFd, DeviceCpu, DeviceCpu, queues, queues + 1);
            LoopbackXen xen = blk.Xen;
            int[] toServer = new int[queues + 1];
            int[] fromServer = new int[queues + 1];
            for (int v = 0; v <= queues; v++)
            {
                toServer[v] = xen.ServerEventFd(v);
                fromServer[v] = xen.Channel.VcpuEventFd(v);
            }

            // Each side's guest lives across its batches (its ring indices on the SDK's side, its sequences on both).
            nint floorGuest = 0;
            nint sdkGuest = 0;
            try
            {
                floorGuest = native.MqCreate(queues);
                sdkGuest = native.MqCreate(queues);
                fixed (int* to = toServer)
                fixed (int* from = fromServer)
                {
                    native.MqAttach(sdkGuest, (byte*)xen.GuestRam.Pointer, xen.Page, (uint*)xen.Channel.Injections, to, from, xen.Channel.GuestInterruptEventFd);
                }

                if (!Pairs.Measure(
                    $"blk-mq-4k-random-{queues}queues-eventfd-2cores",
                    pairs,
                    () => RunFloorQueues(native, floorGuest, queues, DeviceCpu, GuestCpu, each),
                    () => native.MqRun(sdkGuest, Math.Max(1, each / 10), GuestCpu) < 0 ? -1 : native.MqRun(sdkGuest, each, GuestCpu)))
                {
                    return false;
                }
            }
            finally
            {
                if (floorGuest != 0)
                {
                    native.MqDestroy(floorGuest);
                }

                if (sdkGuest != 0)
                {
                    native.MqDestroy(sdkGuest);
                }
            }
        }

        return true;
    }

    /// <summary>One batch of the C multi-queue device model, its threads started for the batch.</summary>
    private static double RunFloorQueues(Native native, nint guest, int queues, int cpu, int guestCpu, long each)
    {
        if (native.FloorStartQueues(cpu, cpu, VirtioBlkLoopback.ImagePath, queues) != 0)
        {
            throw new InvalidOperationException("blk_floor_start_mq failed.");
        }

        try
        {
            if (native.FloorRunQueues(guest, Math.Max(1, each / 10), guestCpu) < 0)   // untimed: the new threads settle
            {
                return -1;
            }

            return native.FloorRunQueues(guest, each, guestCpu);
        }
        finally
        {
            native.FloorStop();
        }
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
        private readonly delegate* unmanaged<uint, nint> _mqCreate;
        private readonly delegate* unmanaged<nint, void> _mqDestroy;
        private readonly delegate* unmanaged<nint, byte*, nint, uint*, int*, int*, int, void> _mqAttach;
        private readonly delegate* unmanaged<nint, long, int, double> _mqRun;
        private readonly delegate* unmanaged<int, int, byte*, uint, int> _floorStartQueues;
        private readonly delegate* unmanaged<nint, long, int, double> _floorRunQueues;

        public Native(nint library)
        {
            _guestInit = (delegate* unmanaged<BlkGuest*, byte*, nint, uint*, int, int, int, int, uint, int, void>)NativeLibrary.GetExport(library, "blk_guest_init");
            _guestRun = (delegate* unmanaged<BlkGuest*, long, double>)NativeLibrary.GetExport(library, "blk_guest_run");
            _floorStart = (delegate* unmanaged<int, int, int, byte*, uint, int, int>)NativeLibrary.GetExport(library, "blk_floor_start");
            _floorRun = (delegate* unmanaged<long, double>)NativeLibrary.GetExport(library, "blk_floor_run");
            _floorStop = (delegate* unmanaged<void>)NativeLibrary.GetExport(library, "blk_floor_stop");
            _mqCreate = (delegate* unmanaged<uint, nint>)NativeLibrary.GetExport(library, "blk_mq_guest_create");
            _mqDestroy = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(library, "blk_mq_guest_destroy");
            _mqAttach = (delegate* unmanaged<nint, byte*, nint, uint*, int*, int*, int, void>)NativeLibrary.GetExport(library, "blk_mq_guest_attach");
            _mqRun = (delegate* unmanaged<nint, long, int, double>)NativeLibrary.GetExport(library, "blk_mq_guest_run");
            _floorStartQueues = (delegate* unmanaged<int, int, byte*, uint, int>)NativeLibrary.GetExport(library, "blk_floor_start_mq");
            _floorRunQueues = (delegate* unmanaged<nint, long, int, double>)NativeLibrary.GetExport(library, "blk_floor_run_mq");
        }

        public nint MqCreate(int queues)
        {
            nint guest = _mqCreate((uint)queues);
            return guest != 0 ? guest : throw new InvalidOperationException("blk_mq_guest_create failed.");
        }

        public void MqDestroy(nint guest) => _mqDestroy(guest);

        public void MqAttach(nint guest, byte* ram, nint page, uint* injections, int* toServer, int* fromServer, int interruptFd) =>
            _mqAttach(guest, ram, page, injections, toServer, fromServer, interruptFd);

        public double MqRun(nint guest, long each, int cpu) => _mqRun(guest, each, cpu);

        public int FloorStartQueues(int cpu, int workerCpu, string imagePath, int queues)
        {
            byte[] path = Utf8Z(imagePath);
            fixed (byte* p = path)
            {
                return _floorStartQueues(cpu, workerCpu, p, (uint)queues);
            }
        }

        public double FloorRunQueues(nint guest, long each, int cpu) => _floorRunQueues(guest, each, cpu);

        public void GuestInit(BlkGuest* guest, byte* ram, nint page, uint* injections, int busy, int toServer, int fromServer, int interruptFd, uint block, int random) =>
            _guestInit(guest, ram, page, injections, busy, toServer, fromServer, interruptFd, block, random);

        public double GuestRun(BlkGuest* guest, long iterations) => _guestRun(guest, iterations);

        public int FloorStart(int busy, int cpu, int workerCpu, string imagePath, uint block, int random)
        {
            byte[] path = Utf8Z(imagePath);
            fixed (byte* p = path)
            {
                return _floorStart(busy, cpu, workerCpu, p, block, random);
            }
        }

        public double FloorRun(long iterations) => _floorRun(iterations);

        public void FloorStop() => _floorStop();

        /// <summary>A NUL-terminated UTF-8 path, kept only for the call (the C side opens the file in it).</summary>
        private static byte[] Utf8Z(string text)
        {
            byte[] bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(text) + 1];
            System.Text.Encoding.UTF8.GetBytes(text, 0, text.Length, bytes, 0);
            return bytes;
        }
    }
}
