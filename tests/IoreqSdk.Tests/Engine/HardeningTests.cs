using System;
using System.Collections.Concurrent;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>
/// The engine's side of the security review (issue 13): what a guest writing anything, a device misbehaving, or a
/// host stopping the server at a bad moment could do to the loop, and what it must do instead.
/// </summary>
[TestFixture]
public sealed class HardeningTests
{
    private const ulong Mmio = 0xFEB0_0000;

    // Item 1. The old adapter served a byte of a DWord-only region from the containing dword, and when that dword
    // did not fit in the region it went byte by byte — through itself again, for ever: a stack overflow, which no
    // handler catches.
    [Test]
    public void AnUnimplementedWidthOnARegionNotAMultipleOfItsWidthIsAnsweredNotRecursedOn()
    {
        var ports = new RegisterFile(RegionKind.Port, 2, 0x510, AccessWidths.DWord);
        var adapted = new RegisterFile(RegionKind.Port, 2, 0x520, AccessWidths.DWord, accepted: AccessWidths.All);
        var mmio = new RegisterFile(RegionKind.Mmio, 6, Mmio, AccessWidths.DWord, accepted: AccessWidths.All);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, ports, adapted, mmio);
        mmio.Write(mmio.Region, 0, 4, 0x4433_2211);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Cpu.In(0x510, 1), Is.EqualTo(0xFFu), "refused: the region does not accept bytes");
            Assert.That(guest.Cpu.In(0x520, 1), Is.EqualTo(0xFFu), "accepted, but no dword of the region holds it");
            Assert.That(guest.Cpu.ReadMmio(Mmio + 4, 2), Is.EqualTo(0xFFFFUL), "the dword at +4 leaves the 6-byte region");
            Assert.That(guest.Cpu.ReadMmio(Mmio + 2, 2), Is.EqualTo(0x4433UL), "a word inside the first dword is extracted");
            Assert.That(guest.Cpu.ReadMmio(Mmio + 3, 2), Is.EqualTo(0xFF44UL), "straddling: the byte beyond the last dword reads all-ones");
        }

        guest.Cpu.WriteMmio(Mmio + 3, 2, 0xAABB);
        Assert.That(mmio.Read(mmio.Region, 0, 4), Is.EqualTo(0xBB33_2211UL), "a straddling write merges what fits and drops the rest");
    }

    // Item W. The old adapter read-modify-wrote a dword for a byte write: a write to doorbell+1 rang the doorbell again
    // with the bytes it read back; a byte of 0 written to a write-1-to-clear status byte wrote back (cleared) the others.
    [Test]
    public void AWidthTheRegionDoesNotAcceptIsRefusedNotReadModifyWritten()
    {
        var doorbells = new RegisterFile(RegionKind.Mmio, 0x100, Mmio, AccessWidths.DWord);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, doorbells);
        guest.Cpu.WriteMmio(Mmio, 4, 0x0000_0101);
        doorbells.Calls.Clear();

        guest.Cpu.WriteMmio(Mmio + 1, 1, 0);
        guest.Cpu.WriteMmio(Mmio, 8, 0x1111_2222_3333_4444);
        ulong read = guest.Cpu.ReadMmio(Mmio, 2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(doorbells.Calls, Is.Empty, "the device never sees an access it did not declare, nor one made up for it");
            Assert.That(read, Is.EqualTo(0xFFFFUL));
            Assert.That(guest.Server.Statistics.RefusedWidthAccesses, Is.EqualTo(3));
            Assert.That(guest.Cpu.ReadMmio(Mmio, 4), Is.EqualTo(0x0000_0101UL), "the register is as the last dword write left it");
        }
    }

    // Item 2. The old loop raised TimeOffsetChanged bare: the guest writing its RTC made a throwing handler's exception
    // escape the loop thread, which ends the process.
    [Test]
    public void AThrowingTimeOffsetHandlerIsContainedAndTheOthersStillRun()
    {
        long? seen = null;
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(new SimulationOptions(), s =>
        {
            s.TimeOffsetChanged += (_, _) => throw new InvalidOperationException("handler bug");
            s.TimeOffsetChanged += (_, e) => seen = e.DeltaSeconds;
        }, device);

        guest.Xen.ChangeRtcOffset(60);
        guest.Cpu.WriteMmio(Mmio, 4, 7);   // drains the ring (and so raises the event) first

        using (Assert.EnterMultipleScope())
        {
            Assert.That(seen, Is.EqualTo(60), "the second handler still ran");
            Assert.That(guest.Server.Statistics.DeviceFaults, Is.EqualTo(1));
            Assert.That(guest.Cpu.ReadMmio(Mmio, 4), Is.EqualTo(7UL), "the loop goes on serving");
        }
    }

    // Item 3. The old Stop, called by a handler on the loop thread, tore everything down underneath the request: Serve
    // then wrote the answer into the unmapped page and indexed the emptied port array (an exception off the loop).
    [TestCase(false)]
    [TestCase(true)]
    public void StopOrDisposeFromADeviceHandlerAnswersTheRequestFirst(bool dispose)
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        device.Write(device.Region, 0x10, 4, 0x1234);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        device.OnRead = (offset, _) =>
        {
            if (offset == 0x10)
            {
                if (dispose)
                {
                    guest.Server.Dispose();
                }
                else
                {
                    guest.Server.Stop();
                }
            }
        };

        ulong read = guest.Cpu.ReadMmio(Mmio + 0x10, 4);

        // IsRunning turns false when teardown begins; the loop then finishes it on its own thread: wait for the end
        // (checking Xen's side after IsRunning alone raced the destroy, and a read then reached the dying server).
        bool stopped = Wait.Until(() => !guest.Server.IsRunning && guest.Server.IsTornDown);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(read, Is.EqualTo(0x1234UL), "the request that stopped the server was answered");
            Assert.That(stopped, Is.True, "then the loop tore the server down");
            Assert.That(guest.Xen.CrashReason, Is.Null);
            Assert.That(guest.Cpu.ReadMmio(Mmio + 0x10, 4), Is.EqualTo(0xFFFF_FFFFUL), "its ranges went with it");
            Assert.That(guest.Xen.CreateIoreqServer(guest.Xen.Domain, BufferedIoreqMode.Off), Is.Zero, "the server was destroyed");
        }
    }

    // The class of item 3, for hosts: RunAsync waited only for its token, so a server a device had stopped (or whose
    // loop failed) left demu's run hanging with nothing served.
    [Test]
    public async Task RunAsyncCompletesWhenADeviceStopsTheServer()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        server.AddDevice(device);
        device.OnWrite = (_, _) => server.Stop();
        using var never = new CancellationTokenSource();
        Task run = server.RunAsync(never.Token);
        xen.Vcpu(0).WriteMmio(Mmio, 4, 1);
        Task first = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30))).ConfigureAwait(false);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(first, Is.SameAs(run), "the run ended without its token");
            Assert.That(server.IsRunning, Is.False);
        }
    }

    // The class of item 3: teardown from every thread at once — the loop, a device thread, and the host.
    [Test]
    public void StopAndDisposeFromSeveralThreadsAtOnceTearDownOnce()
    {
        for (int round = 0; round < 20; round++)
        {
            var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { RecordCalls = false };
            using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
            Assert.That(guest.Cpu.ReadMmio(Mmio, 4), Is.Zero);
            using var go = new ManualResetEventSlim();
            var errors = new ConcurrentQueue<Exception>();
            Task[] stoppers = new Task[4];
            for (int i = 0; i < stoppers.Length; i++)
            {
                bool dispose = (i & 1) != 0;
                stoppers[i] = Task.Factory.StartNew(() =>
                {
                    go.Wait();
                    try
                    {
                        // Posted work stops the server from the loop while the threads stop it from outside.
                        device.Context.TryPost(() => guest.Server.Stop());
                        if (dispose)
                        {
                            guest.Server.Dispose();
                        }
                        else
                        {
                            guest.Server.Stop();
                        }
                    }
                    catch (Exception e)
                    {
                        errors.Enqueue(e);
                    }
                }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            }

            go.Set();
            bool finished = Task.WaitAll(stoppers, TimeSpan.FromSeconds(30));

            using (Assert.EnterMultipleScope())
            {
                Assert.That(finished, Is.True, $"round {round}: no stopper hung");
                Assert.That(errors, Is.Empty);
                Assert.That(guest.Server.IsRunning, Is.False);
                Assert.That(guest.Xen.CrashReason, Is.Null);
                Assert.That(guest.Xen.CreateIoreqServer(guest.Xen.Domain, BufferedIoreqMode.Off), Is.Zero, "destroyed once, slot free");
                Assert.That(device.Context.TryPost(() => { }), Is.False, "a stopped server takes no work");
            }
        }
    }

    // Item 5's SDK side: off-loop work is bounded (a guest cannot queue unbounded work), runs away from the loop, and
    // its completion runs on the loop — where guest memory may be used.
    [Test]
    public void OffLoopWorkIsBoundedAndCompletesOnTheLoop()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, MaxOffLoopWork = 2 });
        server.AddDevice(device);
        server.Start();
        using var gate = new ManualResetEventSlim();
        var completed = new ConcurrentQueue<(int Value, bool MemoryUsable)>();
        bool Queue(int value) => device.Context.TryRunOffLoop(token =>
        {
            gate.Wait(token);
            return value;
        }, result => completed.Enqueue((result, device.Context.Memory.TryRead(0x1000, new byte[4]))));

        bool first = Queue(1), second = Queue(2), third = Queue(3);
        gate.Set();
        bool done = Wait.Until(() => completed.Count == 2);
        (int, bool)[] firstTwo = completed.ToArray();
        bool again = Wait.Until(() => Queue(4));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((first, second, third), Is.EqualTo((true, true, false)), "the third exceeds the bound of two");
            Assert.That(server.Statistics.RefusedOffLoopWork, Is.GreaterThanOrEqualTo(1));
            Assert.That(done, Is.True);
            Assert.That(firstTwo, Is.EqualTo(new[] { (1, true), (2, true) }), "in order, on the loop");
            Assert.That(again, Is.True, "places are freed as completions run");
        }
    }

    // The class of item 3 again: the server stopped from its own worker thread (off-loop work calling Stop), whose
    // teardown closes that very worker — it must neither wait for itself nor run the completion.
    [Test]
    public void StopFromOffLoopWorkTearsDownWithoutRunningItsCompletion()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        bool completed = false;
        using var stopped = new ManualResetEventSlim();
        Assert.That(device.Context.TryRunOffLoop(_ =>
        {
            guest.Server.Stop();
            stopped.Set();
            return 0;
        }, _ => completed = true), Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(stopped.Wait(TimeSpan.FromSeconds(30)), Is.True, "Stop returned on the worker thread");
            Assert.That(guest.Server.IsRunning, Is.False);
            Assert.That(guest.Xen.CreateIoreqServer(guest.Xen.Domain, BufferedIoreqMode.Off), Is.Zero, "torn down");
            Assert.That(completed, Is.False, "a completion of a run that ended never runs");
        }
    }

    // Item 5's enforcement: the loop measures how long each callback held it.
    [Test]
    public void ACallbackHoldingTheLoopIsCountedAsAnOverrun()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { OnRead = (offset, _) => Thread.Sleep(offset == 0x40 ? 50 : 0) };
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, LoopStallThreshold = TimeSpan.FromMilliseconds(5) });
        server.AddDevice(device);
        server.Start();
        xen.Vcpu(0).ReadMmio(Mmio + 0x40, 4);
        long afterRequest = server.Statistics.LoopOverruns;
        using var ran = new ManualResetEventSlim();
        device.Context.Post(() =>
        {
            Thread.Sleep(50);
            ran.Set();
        });
        ran.Wait(TimeSpan.FromSeconds(30));
        Assert.That(Wait.Until(() => server.Statistics.LoopOverruns >= afterRequest + 1), Is.True, "posted work is measured too");
        Assert.That(afterRequest, Is.GreaterThanOrEqualTo(1), "a 50 ms handler against a 5 ms threshold");

        // And the metric reports it.
        long metric = -1;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == IoreqServerMetrics.MeterName && instrument.Name == "ioreq.loop_overruns")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (System.Collections.Generic.KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "ioreq.server" && (int?)tag.Value == server.Id)
                {
                    metric = value;
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.That(metric, Is.EqualTo(server.Statistics.LoopOverruns));
    }

    // The class "unbounded queues": Post is bounded, and work that keeps posting cannot hold the loop.
    [Test]
    public void PostedWorkIsBoundedAndCannotStarveTheGuest()
    {
        using var inHandler = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio)
        {
            OnWrite = (offset, _) =>
            {
                if (offset == 0x80)
                {
                    inHandler.Set();
                    release.Wait();
                }
            },
        };
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, MaxPostedWork = 3 });
        server.AddDevice(device);
        server.Start();

        // Hold the loop in a handler so that nothing drains the queue, then fill it.
        var held = Task.Run(() => xen.Vcpu(0).WriteMmio(Mmio + 0x80, 4, 1));
        inHandler.Wait(TimeSpan.FromSeconds(30));
        bool[] posts = [device.Context.TryPost(() => { }), device.Context.TryPost(() => { }), device.Context.TryPost(() => { }), device.Context.TryPost(() => { })];
        Assert.That(() => device.Context.Post(() => { }), Throws.InvalidOperationException.With.Message.Contains("full"));
        release.Set();
        held.Wait(TimeSpan.FromSeconds(30));

        // Work that posts itself again for ever: the old loop ran posted work until the queue was empty, i.e. for ever.
        bool spinning = true;
        void Again()
        {
            if (Volatile.Read(ref spinning))
            {
                device.Context.TryPost(Again);
            }
        }

        // The held write's answer comes before the loop runs the three posted items: wait for the room they leave.
        Assert.That(Wait.Until(() => device.Context.TryPost(Again)), Is.True, "the queue drains once the loop is free");
        ulong read = xen.Vcpu(0).ReadMmio(Mmio + 0x80, 4);
        Volatile.Write(ref spinning, false);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(posts, Is.EqualTo(new[] { true, true, true, false }));
            Assert.That(server.Statistics.RefusedPosts, Is.GreaterThanOrEqualTo(2));
            Assert.That(read, Is.EqualTo(1UL), "the guest is served while the work keeps posting");
        }
    }

    // The class "long work on the loop" / "unbounded queues", guest side: the old drain served the buffered ring until
    // it was empty. A vCPU that keeps writing to the VGA window (here: a new buffered write for each one served) kept
    // the loop draining for ever, and every other vCPU's synchronous request waited.
    [Test]
    public void ABufferedRingThatNeverEmptiesDoesNotStarveSynchronousRequests()
    {
        bool feeding = true;
        SimulatedGuest? guest = null;
        var vga = new RegisterFile(RegionKind.Mmio, 0x20000, 0xA0000) { RecordCalls = false };
        vga.OnWrite = (_, _) =>
        {
            if (Volatile.Read(ref feeding))
            {
                guest!.Xen.Vcpu(1).WriteMmio(0xA0000, 1, 1);
            }
        };
        var registers = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using (guest = new SimulatedGuest(GuestArchitecture.X86, 2, vga, registers))
        {
            registers.Write(registers.Region, 0, 4, 0x5151);
            guest.Xen.Vcpu(1).WriteMmio(0xA0000, 1, 1);
            ulong read = guest.Cpu.ReadMmio(Mmio, 4);
            Volatile.Write(ref feeding, false);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(read, Is.EqualTo(0x5151UL), "answered while the ring still had entries");
                Assert.That(guest.Server.Statistics.BufferedEntries, Is.GreaterThan(0));
            }
        }
    }

    // Item 7. The old context handed devices the loop's map cache itself: a device thread racing the guest's
    // INVALIDATEs mapped frames after the flush (leaked foreign mappings) and used ones evicted meanwhile.
    [Test]
    public void GuestMemoryRefusesUseOffTheLoopThread()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        "ram!"u8.CopyTo(guest.Xen.Ram.Slice(0x3000));
        var buffer = new byte[4];
        bool onLoop = false;
        using var ran = new ManualResetEventSlim();
        device.Context.Post(() =>
        {
            onLoop = device.Context.Memory.TryRead(0x3000, buffer);
            ran.Set();
        });
        ran.Wait(TimeSpan.FromSeconds(30));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => device.Context.Memory.TryRead(0x3000, new byte[4]), Throws.InvalidOperationException.With.Message.Contains("event-loop thread"));
            Assert.That(() => device.Context.Memory.TryWrite(0x3000, new byte[4]), Throws.InvalidOperationException);
            Assert.That(onLoop, Is.True);
            Assert.That(buffer, Is.EqualTo("ram!"u8.ToArray()));
            Assert.That(guest.Xen.OutstandingGuestMappings, Is.EqualTo(1), "only the loop's access mapped a frame");
        }
    }

    // The class of item 7: the other loop-only service, region mapping, refuses other threads while running too.
    [Test]
    public void RegionMappingRefusesUseOffTheLoopThreadWhileRunning()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, null);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        Assert.That(() => device.Context.MapRegion(device.Region, Mmio), Throws.InvalidOperationException.With.Message.Contains("event-loop thread"));
        Assert.That(guest.Cpu.ReadMmio(Mmio, 4), Is.EqualTo(0xFFFF_FFFFUL), "nothing was mapped");
    }

    // Item 8. The old XenEventChannel kept the eventfd as a bare number: Interrupt after Dispose wrote 8 bytes to
    // whatever file the process had opened with that number since.
    [Test]
    public unsafe void InterruptAfterDisposeWritesNothingToAReusedDescriptor()
    {
        using var never = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.In);
        var channel = IoreqSdk.Xen.XenEventChannel.ForDescriptor((int)never.SafePipeHandle.DangerousGetHandle());
        int wake = channel.WakeDescriptor;
        channel.Dispose();

        // Linux gives the lowest free number: the next descriptor opened is, in all likelihood, the old wake's number.
        // Another eventfd, so that a stray 8-byte write would land (a pipe's read end would just refuse it).
        int reused = Interop.Libc.EventFd(0, Interop.Libc.EFD_CLOEXEC | Interop.Libc.EFD_NONBLOCK);
        try
        {
            if (reused != wake)
            {
                Assert.Inconclusive($"descriptor {wake} was not reused (got {reused})");
            }

            channel.Interrupt();
            ulong counter = 0;
            long read = Interop.Libc.Read(reused, &counter, sizeof(ulong));
            Assert.That((read, counter), Is.EqualTo((-1L, 0UL)), "the reused descriptor received nothing (a read finds it empty)");
        }
        finally
        {
            _ = Interop.Libc.Close(reused);
        }
    }

    // Item 8, the server's side: the old Post read the channel and interrupted it with nothing keeping teardown from
    // disposing it in between — on Xen, the same stray write into a reused descriptor.
    [Test]
    public void PostRacingTeardownNeverInterruptsADisposedChannel()
    {
        for (int round = 0; round < 20; round++)
        {
            var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
            using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
            using var posting = new CancellationTokenSource();
            using var started = new ManualResetEventSlim();
            var poster = Task.Factory.StartNew(() =>
            {
                started.Set();
                while (!posting.IsCancellationRequested)
                {
                    device.Context.TryPost(() => { });
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            started.Wait(TimeSpan.FromSeconds(30));
            Thread.Sleep(1);
            guest.Server.Stop();
            posting.Cancel();
            poster.Wait(TimeSpan.FromSeconds(30));
            Assert.That(guest.Xen.Diagnostics.InterruptsAfterClose, Is.Zero, $"round {round}");
        }
    }

    // Found in the merge of the two halves of the hardening: the validated copy was written before RestrictHandlesToDomain
    // and Platform existed and dropped both, so a server asked to deprivilege itself silently did not. Every option a
    // user can set must survive the copy.
    // BusyPoll and several loop threads are refused together: each case leaves one of them at its default.
    [TestCase(nameof(IoreqServerOptions.LoopThreads))]
    [TestCase(nameof(IoreqServerOptions.BusyPoll))]
    public void TheValidatedCopyKeepsEveryOption(string leftAtDefault)
    {
        var options = new IoreqServerOptions();
        var changed = new System.Collections.Generic.List<string>();
        foreach (System.Reflection.PropertyInfo property in typeof(IoreqServerOptions).GetProperties())
        {
            if (!property.CanWrite || property.Name == leftAtDefault)
            {
                continue;
            }

            object? value = property.PropertyType == typeof(bool) ? true
                : property.PropertyType == typeof(ushort) ? (ushort)7
                : property.PropertyType == typeof(int) ? 3
                : property.PropertyType == typeof(TimeSpan) ? TimeSpan.FromMilliseconds(3)
                : property.PropertyType == typeof(BufferedIoreqMode?) ? BufferedIoreqMode.Legacy
                : property.PropertyType == typeof(IoreqSdk.Platforms.GuestPlatform) ? new IoreqSdk.Platforms.Arm64Platform()
                : property.PropertyType == typeof(Microsoft.Extensions.Logging.ILoggerFactory) ? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance
                : throw new AssertionException($"{property.Name}: give the test a value of type {property.PropertyType}.");
            property.SetValue(options, value);
            changed.Add(property.Name);
        }

        IoreqServerOptions copy = options.ValidatedCopy();

        Assert.That(changed, Is.Not.Empty);
        using (Assert.EnterMultipleScope())
        {
            foreach (string name in changed)
            {
                System.Reflection.PropertyInfo property = typeof(IoreqServerOptions).GetProperty(name)!;
                Assert.That(property.GetValue(copy), Is.EqualTo(property.GetValue(options)), name);
            }
        }
    }

    // Item 13. The old server built its cache from GuestMemoryCacheFrames unchecked: 0 divided by zero on the loop thread
    // at the first string I/O or DMA.
    [Test]
    public void InvalidOptionsAreRefusedAtConstruction()
    {
        using var xen = new SimulatedHypervisor();
        IoreqServerOptions Valid() => new() { Domain = xen.Domain };
        (string Name, IoreqServerOptions Options)[] invalid =
        [
            ("GuestMemoryCacheFrames", new IoreqServerOptions { Domain = xen.Domain, GuestMemoryCacheFrames = 0 }),
            ("GuestMemoryCacheFrames", new IoreqServerOptions { Domain = xen.Domain, GuestMemoryCacheFrames = -1 }),
            ("GuestMemoryCacheFrames", new IoreqServerOptions { Domain = xen.Domain, GuestMemoryCacheFrames = int.MaxValue }),
            ("GuestMemoryPinWindows", new IoreqServerOptions { Domain = xen.Domain, GuestMemoryPinWindows = 0 }),
            ("GuestMemoryPinWindows", new IoreqServerOptions { Domain = xen.Domain, GuestMemoryPinWindows = IoreqServerOptions.MaxGuestMemoryPinWindows + 1 }),
            ("Domain", new IoreqServerOptions { Domain = 0x7FF0 }),
            ("Domain", new IoreqServerOptions { Domain = ushort.MaxValue }),
            ("BufferedMode", new IoreqServerOptions { Domain = xen.Domain, BufferedMode = (BufferedIoreqMode)7 }),
            ("MaxPostedWork", new IoreqServerOptions { Domain = xen.Domain, MaxPostedWork = 0 }),
            ("MaxOffLoopWork", new IoreqServerOptions { Domain = xen.Domain, MaxOffLoopWork = -5 }),
            ("LoopStallThreshold", new IoreqServerOptions { Domain = xen.Domain, LoopStallThreshold = TimeSpan.Zero }),
        ];

        using (Assert.EnterMultipleScope())
        {
            foreach ((string name, IoreqServerOptions options) in invalid)
            {
                Assert.That(() => new IoreqServer(xen, options), Throws.TypeOf<ArgumentOutOfRangeException>().With.Property("ParamName").EqualTo(name));
            }
        }

        // Declarations are checked when made too: a port region past port 0xFFFF, accepted widths that leave out an
        // implemented one.
        Assert.That(() => new RegisterFile(RegionKind.Port, 0x20, 0xFFF0), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => new RegisterFile(RegionKind.Mmio, 0x10, Mmio, AccessWidths.DWord, accepted: AccessWidths.Byte), Throws.TypeOf<ArgumentOutOfRangeException>());

        // Validated once and copied: changing the object afterwards cannot bring the zero back.
        IoreqServerOptions later = Valid();
        var device = new RegisterFile(RegionKind.Port, 8, 0x3F8);
        using var server = new IoreqServer(xen, later);
        later.GuestMemoryCacheFrames = 0;
        server.AddDevice(device);
        server.Start();
        xen.Vcpu(0).RepOuts(0x3F8, 1, 0x2000, 4);
        Assert.That(server.Statistics.PioRequests, Is.EqualTo(1));
    }

    // The class of item 13, in the simulation's options: the old SimulatedHypervisor kept the caller's object, so a
    // RamSize raised afterwards made Ram a span past the memory it had allocated; a 4 GiB RAM overflowed that span.
    [Test]
    public void SimulationOptionsAreValidatedAndCopiedAtConstruction()
    {
        Assert.That(() => new SimulatedHypervisor(new SimulationOptions { RamSize = 4UL << 30 }), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => new SimulatedHypervisor(new SimulationOptions { ResponseTimeout = TimeSpan.Zero }), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => new SimulatedHypervisor(new SimulationOptions { Domain = 0x7FF1 }), Throws.TypeOf<ArgumentOutOfRangeException>());

        var options = new SimulationOptions { RamSize = 1 << 20 };
        using var xen = new SimulatedHypervisor(options);
        options.RamSize = 1 << 30;
        Assert.That(xen.Ram.Length, Is.EqualTo(1 << 20));
    }
}
