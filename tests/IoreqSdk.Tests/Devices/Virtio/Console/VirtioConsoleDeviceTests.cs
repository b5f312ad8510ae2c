using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Text;
using IoreqSdk.Devices.Virtio.Console;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Infrastructure;
using IoreqSdk.Tests.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Console;

/// <summary>virtio-console (virtio 1.2 §5.3), one port: output to a host stream, input into receive buffers, both bounded.</summary>
[TestFixture]
public sealed class VirtioConsoleDeviceTests
{
    private const ulong RamBase = 0x10_0000;
    private const ulong Buffers = RamBase + 0x1_0000;

    [Test]
    public void TheConfigSpaceIsByteExact()
    {
        var sized = new VirtioConsoleDevice(null, columns: 132, rows: 43);
        var plain = new VirtioConsoleDevice(null);
        byte[] config = new byte[sized.ConfigSize];
        sized.ReadConfig(0, config);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(sized.DeviceType, Is.EqualTo(3));
            Assert.That(config, Has.Length.EqualTo(12), "cols, rows, max_nr_ports, emerg_wr");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(config), Is.EqualTo(132));
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(config.AsSpan(2)), Is.EqualTo(43));
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(4)), Is.EqualTo(1));
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(config.AsSpan(8)), Is.Zero);
            Assert.That(sized.OfferedFeatures & VirtioConsoleDevice.FeatureSize, Is.Not.Zero);
            Assert.That(plain.OfferedFeatures & VirtioConsoleDevice.FeatureSize, Is.Zero);
            Assert.That(plain.OfferedFeatures & (1UL << 1), Is.Zero, "no MULTIPORT");
            Assert.That(plain.QueueCount, Is.EqualTo(2), "receiveq0 and transmitq0");
        }
    }

    [Test]
    public void TransmittedBytesReachTheSinkInOrder()
    {
        var sink = new MemoryStream();
        var rig = new ConsoleRig(sink);
        rig.Transmit("Hello, ", "virtio ", "console!\n");
        rig.Context.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Encoding.ASCII.GetString(sink.ToArray()), Is.EqualTo("Hello, virtio console!\n"));
            Assert.That(rig.TakeUsed(1).ConvertAll(u => u.Length), Is.EqualTo(new[] { 0u, 0u, 0u }), "returned, nothing written into them");
            Assert.That(rig.Device.BytesWritten, Is.EqualTo(23));
        }
    }

    [Test]
    public void OutputIsBoundedAndTheGuestIsPacedWhileTheSinkIsBusy()
    {
        var sink = new MemoryStream();
        var rig = new ConsoleRig(sink);
        var expected = new List<byte>();
        var chunks = new string[4];
        for (int i = 0; i < chunks.Length; i++)
        {
            chunks[i] = new string((char)('a' + i), 3000);
            expected.AddRange(Encoding.ASCII.GetBytes(chunks[i]));
        }

        rig.Transmit(chunks);

        // The first kick's 3000 bytes went to the writer at once; while it is busy at most one buffer more is gathered:
        // the third transmit buffer is held part-way, the fourth waits in the ring — no ever-growing host buffer.
        int writes = rig.Context.Pending;
        int returnedWhileBusy = rig.TakeUsed(1).Count;
        long takenWhileBusy = rig.Device.BytesTransmitted;
        rig.Context.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(writes, Is.EqualTo(1), "one write at a time");
            Assert.That(takenWhileBusy, Is.EqualTo(3000 + VirtioConsoleDevice.BufferSize), "the write in flight and one full buffer");
            Assert.That(returnedWhileBusy, Is.EqualTo(2));
            Assert.That(sink.ToArray(), Is.EqualTo(expected.ToArray()), "everything, in order, once the sink caught up");
            Assert.That(rig.TakeUsed(1), Has.Count.EqualTo(2));
        }
    }

    [Test]
    public void ASinkThatFailsIsCountedAndTheConsoleGoesOn()
    {
        var rig = new ConsoleRig(new FailingStream());
        rig.Transmit("lost");
        rig.Context.RunUntilIdle();
        rig.Transmit("also lost");
        rig.Context.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Device.OutputErrors, Is.EqualTo(2));
            Assert.That(rig.Device.DroppedOutputBytes, Is.EqualTo(13));
            Assert.That(rig.TakeUsed(1), Has.Count.EqualTo(2), "the guest's buffers still come back");
        }
    }

    [Test]
    public void HostInputWaitsForReceiveBuffersAndFillsThem()
    {
        var rig = new ConsoleRig(null);
        int taken = rig.Device.SendToGuest("ls -l\n"u8);
        int waiting = rig.Device.BytesWaiting;
        rig.Context.RunPosted();
        rig.Receive(64);
        var used = rig.TakeUsed(0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That((taken, waiting), Is.EqualTo((6, 6)));
            Assert.That(used, Has.Count.EqualTo(1));
            Assert.That(used[0].Length, Is.EqualTo(6u));
            Assert.That(Encoding.ASCII.GetString(rig.Ram.Span(Buffers, 6)), Is.EqualTo("ls -l\n"));
            Assert.That(rig.Device.BytesWaiting, Is.Zero);
        }
    }

    [Test]
    public void InputArrivingWhenBuffersArePostedIsDeliveredByThePostedWork()
    {
        var rig = new ConsoleRig(null);
        rig.Receive(4);
        rig.Receive(4, slot: 1);
        rig.Device.SendToGuest("abcdef"u8);
        int posted = rig.Context.PostedCount;
        rig.Context.RunPosted();
        var used = rig.TakeUsed(0);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(posted, Is.EqualTo(1), "one delivery posted");
            Assert.That(used.ConvertAll(u => u.Length), Is.EqualTo(new[] { 4u, 2u }));
            Assert.That(Encoding.ASCII.GetString(rig.Ram.Span(Buffers, 4)), Is.EqualTo("abcd"));
            Assert.That(Encoding.ASCII.GetString(rig.Ram.Span(Buffers + 0x1000, 2)), Is.EqualTo("ef"));
        }
    }

    [Test]
    public void InputBeyondTheBoundIsDroppedAndCountedWhenTheGuestPostsNoBuffers()
    {
        var rig = new ConsoleRig(null);
        byte[] input = new byte[10_000];
        new Random(3).NextBytes(input);
        rig.Device.StartInput(new MemoryStream(input));
        bool ended = rig.Device.WaitForInputEnd(TimeSpan.FromSeconds(30));
        long dropped = rig.Device.DroppedInputBytes;
        int waiting = rig.Device.BytesWaiting;
        rig.Context.RunPosted();
        rig.Receive(4096);
        rig.Context.RunPosted();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ended, Is.True);
            Assert.That(waiting, Is.EqualTo(VirtioConsoleDevice.BufferSize), "bounded");
            Assert.That(dropped, Is.EqualTo(10_000 - VirtioConsoleDevice.BufferSize), "the rest dropped and counted");
            Assert.That(rig.Ram.Span(Buffers, 4096).ToArray(), Is.EqualTo(input.AsSpan(0, 4096).ToArray()), "the first bytes kept, in order");
        }
    }

    [Test]
    public void UnusableBuffersComeBackEmpty()
    {
        var rig = new ConsoleRig(new MemoryStream());
        rig.Device.SendToGuest("x"u8);

        // A receive buffer the device cannot write, a transmit buffer it cannot read, one outside RAM.
        rig.Post(0, new GuestBuffer(Buffers, 16, false));
        rig.Post(1, new GuestBuffer(Buffers, 16, true));
        rig.Post(1, new GuestBuffer(RamBase + (1 << 20) + 0x100, 16, false));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.TakeUsed(0), Is.EqualTo(new[] { ((ushort)0, 0u) }));
            Assert.That(rig.TakeUsed(1).ConvertAll(u => u.Length), Is.EqualTo(new[] { 0u, 0u }));
            Assert.That(rig.Device.MalformedBuffers, Is.EqualTo(3));
            Assert.That(rig.Device.BytesWaiting, Is.EqualTo(1), "the input waits for a usable buffer");
        }
    }

    [Test]
    public void AResetDropsAHeldTransmitBufferWithoutWritingTheRing()
    {
        var rig = new ConsoleRig(new MemoryStream());
        rig.Transmit(new string('z', 3000), new string('y', 3000), new string('x', 3000));
        ulong used = RamBase + 0x1000 + 0x2000;
        byte[] before = rig.Ram.Span(used, 8 + (8 * 64)).ToArray();
        rig.Device.WriteStatus(0);
        rig.Context.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rig.Ram.Span(used, 8 + (8 * 64)).ToArray(), Is.EqualTo(before), "the reset queue is not written");
            Assert.That(rig.Device.BytesWritten, Is.EqualTo(rig.Device.BytesTransmitted), "what was taken is still written out");
        }
    }

    [TestCase(false, TestName = "HugeTransmitBuffersAreTakenABoundedAmountAPass(no sink)")]
    [TestCase(true, TestName = "HugeTransmitBuffersAreTakenABoundedAmountAPass(a worker that refuses the writes)")]
    public void HugeTransmitBuffersAreTakenABoundedAmountAPass(bool refusingWorker)
    {
        // One transmit buffer of 16 descriptors of 512 KiB, all over the same guest RAM: 8 MiB for one kick. Nothing
        // paces the console here (no sink to wait for, or a worker that refuses every write), so only the byte budget
        // ends a pass: without it the loop was held for the whole buffer, however large the guest made it.
        var rig = new ConsoleRig(refusingWorker ? new MemoryStream() : null);
        rig.Context.Accepting = !refusingWorker;
        const uint Segment = 512 * 1024;
        var segments = new GuestBuffer[16];
        for (int i = 0; i < segments.Length; i++)
        {
            segments[i] = new GuestBuffer(Buffers + 0x2_0000, Segment, false);
        }

        rig.Post(1, segments);
        long firstPass = rig.Device.BytesTransmitted;
        int usedAfterFirst = rig.TakeUsed(1).Count;
        int passes = 1;
        var used = new List<(ushort Id, uint Length)>();
        while (used.Count == 0 && passes < 1000)
        {
            // The transport here schedules no later pass, so the budget's yield re-enables notifications: a kick each.
            rig.Device.NotifyQueue(1);
            passes++;
            used.AddRange(rig.TakeUsed(1));
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(firstPass, Is.EqualTo(VirtioConsoleDevice.MaxBytesPerPass), "one pass takes the budget, no more");
            Assert.That(usedAfterFirst, Is.Zero, "the buffer is held part-way after the first pass");
            Assert.That(passes, Is.EqualTo(16 * Segment / VirtioConsoleDevice.MaxBytesPerPass));
            Assert.That(rig.Device.BytesTransmitted, Is.EqualTo(16L * Segment));
            Assert.That(used, Has.Count.EqualTo(1), "the buffer comes back once it is all taken");
            Assert.That(rig.Device.DroppedOutputBytes, Is.EqualTo(refusingWorker ? 16L * Segment : 0), "no sink discards; a refused write is dropped and counted");
        }
    }

    [Test]
    public void DisablingTheTransmitQueueDropsAHeldBufferAndReadsNoMoreOfIt()
    {
        // The writer is busy with the first buffer, the second is gathered, the third held part-way (see the pacing test).
        var sink = new MemoryStream();
        var rig = new ConsoleRig(sink);
        rig.Transmit(new string('a', 3000), new string('b', 3000), new string('c', 3000));
        long taken = rig.Device.BytesTransmitted;
        int usedBefore = rig.TakeUsed(1).Count;
        ulong used = RamBase + 0x4000 + 0x2000;
        byte[] usedRing = rig.Ram.Span(used, 4 + (8 * 64)).ToArray();

        // virtio-mmio's QueueReady = 0: the third buffer is the driver's again, which reuses it at once.
        rig.Device.DisableQueue(1);
        rig.Ram.Span(Buffers + 0x2_0000 + (2 * 0x1000), 3000).Fill((byte)'!');
        rig.Context.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(taken, Is.EqualTo(3000 + VirtioConsoleDevice.BufferSize));
            Assert.That(usedBefore, Is.EqualTo(2));
            Assert.That(sink.ToArray(), Does.Not.Contain((byte)'!'), "nothing of the reused buffer reaches the sink");
            Assert.That(rig.Device.BytesTransmitted, Is.EqualTo(taken), "no byte more is taken from it");
            Assert.That(rig.Device.BytesWritten, Is.EqualTo(taken), "what was taken before is still written");
            Assert.That(rig.Ram.Span(used, 4 + (8 * 64)).ToArray(), Is.EqualTo(usedRing), "the disabled queue's used ring is not written");
        }
    }

    [Test]
    [Category("Allocation")]
    public void OutputAndInputAllocateNothingPerBuffer()
    {
        var sink = new CountingStream();
        var rig = new ConsoleRig(sink);
        GuestBuffer[] transmit = { new(Buffers + 0x2_0000, 64, false) };
        GuestBuffer[] receive = { new(Buffers, 64, true) };
        byte[] input = new byte[16];

        int Rounds(int count)
        {
            int ok = 0;
            for (int i = 0; i < count; i++)
            {
                rig.Post(1, transmit);
                rig.Context.RunUntilIdle();
                rig.Device.SendToGuest(input);
                rig.Post(0, receive);
                rig.Context.RunPosted();
                ok += rig.DrainUsed(0) + rig.DrainUsed(1) == 2 ? 1 : 0;
            }

            return ok;
        }

        SteadyStateAllocations.AssertNone(Rounds, 1_000, "buffer");
        Assert.That(sink.Written, Is.EqualTo(SteadyStateAllocations.TotalRounds(1_000) * 64));
    }

    private sealed class CountingStream : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Written;

        public override long Position { get => Written; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Written += count;
    }

    private sealed class FailingStream : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("the sink is gone");
    }

    /// <summary>The console on test RAM, both queues up (split, 64 entries), off-loop and posted work run by the test.</summary>
    private sealed class ConsoleRig
    {
        private readonly GuestSplitVirtqueue[] _drivers = new GuestSplitVirtqueue[2];
        private int _transmitSlot;

        public ConsoleRig(Stream? sink)
        {
            Ram = new TestGuestRam(RamBase, 1 << 20);
            Device = new VirtioConsoleDevice(sink);
            Context = new ManualDeviceContext(Ram);
            Device.Attach(new TestTransport(Ram));
            Device.AttachContext(Context);
            Device.WriteStatus((byte)VirtioDeviceStatus.Acknowledge);
            Device.WriteStatus((byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver));
            Device.WriteDriverFeatures(1, (uint)(VirtioFeatures.Version1 >> 32));
            Device.WriteStatus((byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk));
            for (int q = 0; q < 2; q++)
            {
                ulong area = RamBase + ((ulong)q * 0x4000);
                Device.SetQueueSize(q, 64);
                Device.SetQueueDescriptorArea(q, area);
                Device.SetQueueDriverArea(q, area + 0x1000);
                Device.SetQueueDeviceArea(q, area + 0x2000);
                Device.EnableQueue(q);
                _drivers[q] = new GuestSplitVirtqueue(Ram, 64, area, area + 0x1000, area + 0x2000, eventIndex: false);
            }

            Device.WriteStatus((byte)(Device.Status | VirtioDeviceStatus.DriverOk));
        }

        public TestGuestRam Ram { get; }

        public VirtioConsoleDevice Device { get; }

        public ManualDeviceContext Context { get; }

        public void Post(int queue, params GuestBuffer[] buffers)
        {
            _drivers[queue].Post(buffers);
            if (_drivers[queue].KickPrepare())
            {
                Device.NotifyQueue(queue);
            }
        }

        /// <summary>Posts each text as one transmit buffer (in two segments when it is longer than one).</summary>
        public void Transmit(params string[] texts)
        {
            foreach (string text in texts)
            {
                ulong at = Buffers + 0x2_0000 + ((ulong)_transmitSlot++ * 0x1000);
                byte[] bytes = Encoding.ASCII.GetBytes(text);
                bytes.CopyTo(Ram.Span(at, bytes.Length));
                if (bytes.Length > 1)
                {
                    int half = bytes.Length / 2;
                    Post(1, new GuestBuffer(at, (uint)half, false), new GuestBuffer(at + (ulong)half, (uint)(bytes.Length - half), false));
                }
                else
                {
                    Post(1, new GuestBuffer(at, (uint)bytes.Length, false));
                }
            }
        }

        public void Receive(uint length, int slot = 0) => Post(0, new GuestBuffer(Buffers + ((ulong)slot * 0x1000), length, true));

        /// <summary>Takes the used buffers of a queue without keeping them (no allocation).</summary>
        public int DrainUsed(int queue)
        {
            int count = 0;
            while (_drivers[queue].TryTakeUsed(out _, out _))
            {
                count++;
            }

            return count;
        }

        public List<(ushort Id, uint Length)> TakeUsed(int queue)
        {
            var used = new List<(ushort, uint)>();
            while (_drivers[queue].TryTakeUsed(out ushort id, out uint length))
            {
                used.Add((id, length));
            }

            return used;
        }
    }
}
