using System;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Simulation.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Blk;

/// <summary>
/// virtio-blk's zero-copy path: reads and writes pinned in guest memory and moved by the worker's preadv/pwritev;
/// the pins given back exactly once, whatever ends the request (its I/O, a refusal, a teardown that dropped it); once
/// the driver takes its buffers back (reset, queue disabled, DMA stopped), no step touches them: those not started skip
/// their I/O, and the access waits, within its bound, for one already running.
/// </summary>
[TestFixture]
public sealed class VirtioBlkZeroCopyTests
{
    private const long ImageSize = 4 << 20;

    [Test]
    public void Reads_and_writes_across_segments_and_pin_windows_move_in_place_and_give_every_pin_back()
    {
        using var rig = new BlkRig(ImageSize, pinnable: true);
        byte[] pattern = BlkRig.Pattern(96 * 1024, 7);

        // Three data segments; the second crosses the test memory's 64 KiB pin window at Data + 0x1_0000.
        ulong a = BlkRig.Data, b = BlkRig.Data + 0x8000, c = BlkRig.Data + 0x3_0000;
        pattern.AsSpan(0, 8192).CopyTo(rig.Ram.Span(a, 8192));
        pattern.AsSpan(8192, 64 * 1024).CopyTo(rig.Ram.Span(b, 64 * 1024));
        pattern.AsSpan(8192 + (64 * 1024)).CopyTo(rig.Ram.Span(c, 24 * 1024));
        rig.Post(VirtioBlkTypes.Out, 100, [new GuestBuffer(a, 8192, false), new GuestBuffer(b, 64 * 1024, false), new GuestBuffer(c, 24 * 1024, false)], slot: 0);
        byte written = rig.Complete(0);
        ulong into = BlkRig.Data + 0x20_0000 - 0x100;
        rig.Read(100, into, 96 * 1024, slot: 1);
        byte read = rig.Complete(1);
        byte[] file = rig.FileBytes();

        using (Assert.EnterMultipleScope())
        {
            Assert.That((written, read), Is.EqualTo((VirtioBlkTypes.Ok, VirtioBlkTypes.Ok)));
            Assert.That(file.AsSpan(100 * 512, pattern.Length).ToArray(), Is.EqualTo(pattern), "pwritev put the segments in order");
            Assert.That(rig.Ram.Span(into, pattern.Length).ToArray(), Is.EqualTo(pattern), "preadv filled the guest's buffer in place");
            Assert.That(rig.Device.ZeroCopyRequests, Is.EqualTo(2));
            Assert.That(rig.Ram.PinsGiven, Is.EqualTo(7), "one pin per piece: 4 for the write (a, b split at a window, c), 3 for the read (two windows crossed)");
            Assert.That(rig.Ram.PinsHeld, Is.Zero, "every pin given back when the I/O ended");
        }
    }

    [Test]
    public void Write_zeroes_after_a_zero_copy_write_in_the_same_request_slot_zeroes_its_ranges([Values(0u, 1u)] uint flags)
    {
        // One request slot (MaxRequestsInFlight 1), so the write-zeroes runs in the slot the pinned write used: it
        // once inherited the write's "pinned" mark, and its worker moved the (empty) pinned buffers instead of
        // zeroing, then answered OK. A flush and a discard took the same wrong turn.
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { MaxRequestsInFlight = 1 }, pinnable: true);
        byte[] pattern = BlkRig.Pattern(32 * 1024, 11);
        pattern.CopyTo(rig.Ram.Span(BlkRig.Data, pattern.Length));
        rig.Write(0, BlkRig.Data, (uint)pattern.Length);
        byte written = rig.Complete();
        rig.Ranges(VirtioBlkTypes.WriteZeroes, new[] { (8ul, 8u, flags) }, BlkRig.Data + 0x2_0000);
        byte zeroed = rig.Complete();
        byte[] file = rig.FileBytes();

        byte[] expected = (byte[])pattern.Clone();
        Array.Clear(expected, 8 * 512, 8 * 512);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((written, zeroed), Is.EqualTo((VirtioBlkTypes.Ok, VirtioBlkTypes.Ok)));
            Assert.That(rig.Device.ZeroCopyRequests, Is.EqualTo(1), "the write went in place; the write-zeroes has no data to pin");
            Assert.That(file.AsSpan(0, pattern.Length).ToArray(), Is.EqualTo(expected), "sectors 8-15 read zero, the rest is the pattern");
            Assert.That(rig.Ram.PinsHeld, Is.Zero);
        }
    }

    [Test]
    public void A_zero_copy_step_queued_before_a_reset_a_queue_disable_or_a_DMA_stop_does_not_touch_the_buffer([Values("reset", "queue", "dma")] string stop)
    {
        using var rig = new BlkRig(ImageSize, pinnable: true);
        rig.Image.WriteAt(512, BlkRig.Pattern(4096, 3));
        rig.Ram.Span(BlkRig.Data + 0x1_0000, 4096).Fill(0xAB);
        rig.Read(1, BlkRig.Data, 4096, slot: 0);
        rig.Write(9, BlkRig.Data + 0x1_0000, 4096, slot: 1);
        OffLoopWork[] queued = rig.Context.TakePending();
        byte[] fileBefore = rig.FileBytes();

        switch (stop)
        {
            case "reset":
                rig.Reset();
                break;
            case "queue":
                rig.Device.DisableQueue(0);
                break;
            default:
                rig.Device.NotifyDmaDisabled();
                break;
        }

        // The worker gets to them only now: the driver has its buffers back, so neither the read nor the write runs.
        foreach (OffLoopWork item in queued)
        {
            item.Run(CancellationToken.None);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Ram.Span(BlkRig.Data, 4096).ToArray(), Is.All.EqualTo(0), "the read wrote nothing into the driver's memory");
            Assert.That(rig.FileBytes(), Is.EqualTo(fileBefore), "the write took nothing from it");
            Assert.That(rig.Ram.PinsHeld, Is.Zero);
            Assert.That(rig.Device.ResetsWithIoInFlight, Is.Zero, "nothing was running: nothing to wait for");
        }

        foreach (OffLoopWork item in queued)
        {
            ManualDeviceContext.Complete(item);
        }
    }

    [Test]
    public void A_reset_waits_for_zero_copy_io_already_running_and_gives_up_after_its_bound()
    {
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { ZeroCopyResetTimeout = TimeSpan.FromSeconds(60) }, pinnable: true);
        bool ioEnded = false;

        // A worker in the middle of its preadv when the vCPU resets the device.
        rig.Device.EnterZeroCopy(0);
        var worker = new Thread(() =>
        {
            Thread.Sleep(50);
            Volatile.Write(ref ioEnded, true);
            rig.Device.ExitZeroCopy(0);
        });
        worker.Start();
        rig.Reset();
        bool endedBeforeReset = Volatile.Read(ref ioEnded);
        worker.Join();

        using var hung = new BlkRig(ImageSize, new VirtioBlkOptions { ZeroCopyResetTimeout = TimeSpan.Zero }, pinnable: true);
        hung.Device.EnterZeroCopy(0);
        hung.Reset();
        long gaveUp = hung.Device.ResetsWithIoInFlight;
        hung.Device.ExitZeroCopy(0);
        hung.Reset();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(endedBeforeReset, Is.True, "the reset returned only after the running I/O ended");
            Assert.That(rig.Device.ResetsWithIoInFlight, Is.Zero);
            Assert.That(gaveUp, Is.EqualTo(1), "a hung step past the bound is counted");
            Assert.That(hung.Device.ResetsWithIoInFlight, Is.EqualTo(1), "once it ended, a reset has nothing to wait for");
        }
    }

    [Test]
    public void Disabling_one_queue_waits_for_that_queue_s_zero_copy_io_only()
    {
        // Queue 0's worker is in the middle of its preadv (and stays there); the guest disables queue 1. Waiting for the
        // device's every step, as before, held the loop for queue 0's I/O up to the bound (here 2 s), then counted it.
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { QueueCount = 2, ZeroCopyResetTimeout = TimeSpan.FromSeconds(2) }, pinnable: true);
        rig.Device.EnterZeroCopy(0);
        rig.Device.DisableQueue(1);
        long afterOtherQueue = rig.Device.ResetsWithIoInFlight;

        using var own = new BlkRig(ImageSize, new VirtioBlkOptions { QueueCount = 2, ZeroCopyResetTimeout = TimeSpan.Zero }, pinnable: true);
        own.Device.EnterZeroCopy(1);
        own.Device.DisableQueue(1);
        long afterOwnQueue = own.Device.ResetsWithIoInFlight;
        own.Device.ExitZeroCopy(1);
        rig.Device.ExitZeroCopy(0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(afterOtherQueue, Is.Zero, "another queue's running I/O is not waited for");
            Assert.That(afterOwnQueue, Is.EqualTo(1), "the disabled queue's own running I/O is (past its bound: counted)");
        }
    }

    [Test]
    public void A_request_refused_by_the_worker_or_dropped_by_a_teardown_gives_its_pins_back()
    {
        using var rig = new BlkRig(ImageSize, new VirtioBlkOptions { ZeroCopyResetTimeout = TimeSpan.Zero }, pinnable: true);
        rig.Context.Accepting = false;
        rig.Read(1, BlkRig.Data, 4096, slot: 0);
        int heldAfterRefusal = rig.Ram.PinsHeld;
        byte refused = rig.Ram.Span(BlkRig.Status(0), 1)[0];

        rig.Context.Accepting = true;
        rig.Read(1, BlkRig.Data, 4096, slot: 1);
        rig.Write(9, BlkRig.Data + 0x1_0000, 4096, slot: 2);
        int heldInFlight = rig.Ram.PinsHeld;
        foreach (OffLoopWork item in rig.Context.TakePending())
        {
            item.Drop(); // the server stopped with both still queued
        }

        int heldAfterDrop = rig.Ram.PinsHeld;
        rig.Reset();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(refused, Is.EqualTo(VirtioBlkTypes.IoError));
            Assert.That(heldAfterRefusal, Is.Zero, "the refused request's pins went back with its answer");
            Assert.That(heldInFlight, Is.EqualTo(2));
            Assert.That(heldAfterDrop, Is.Zero, "a dropped request's pins go back at the drop, not at the next reset");
            Assert.That(rig.Device.ResetsWithIoInFlight, Is.Zero, "and nothing is left counted");
        }
    }

    [Test]
    public void A_buffer_that_is_not_RAM_is_not_pinned_and_fails_as_on_the_copy_path()
    {
        using var rig = new BlkRig(ImageSize, pinnable: true);
        rig.Read(1, BlkRig.RamBase + BlkRig.RamSize - 2048, 4096, slot: 0);
        byte status = rig.Complete(0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(status, Is.EqualTo(VirtioBlkTypes.IoError));
            Assert.That(rig.Device.ZeroCopyRequests, Is.Zero);
            Assert.That(rig.Ram.PinsHeld, Is.Zero);
            Assert.That(rig.Ram.Span(BlkRig.RamBase + BlkRig.RamSize - 2048, 2048).ToArray(), Is.All.EqualTo(0), "nothing written into the RAM part either");
        }
    }
}
