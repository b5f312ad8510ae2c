using System;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>
/// The reusable off-loop work item (<see cref="OffLoopWork"/>): the same guarantees as the delegate form — bounded,
/// contained, completion on the loop, dropped after a stop — with no allocation per offload.
/// </summary>
[TestFixture]
public sealed class OffLoopWorkTests
{
    private const ulong Mmio = 0xFEB0_0000;

    [Test]
    public void AnItemRunsOffTheLoopCompletesOnItAndIsReusedFromItsOwnCompletion()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        var work = new SteppingWork(device.Context, steps: 5);

        Assert.That(device.Context.TryRunOffLoop(work), Is.True);
        bool finished = Wait.Until(() => work.Completions == 5 && !work.IsInFlight);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(finished, Is.True);
            Assert.That(work.Executions, Is.EqualTo(5));
            Assert.That(work.MemoryRefusedInExecute, Is.EqualTo(5), "guest memory is refused off the loop");
            Assert.That(work.MemoryUsableInComplete, Is.EqualTo(5), "and usable in the completion, on the loop");
            Assert.That(work.InFlightInComplete, Is.Zero, "the item is free once its completion begins");
        }
    }

    [Test]
    public void QueueingAnItemStillInFlightThrows()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        using var gate = new ManualResetEventSlim();
        var work = new GatedWork(gate);

        Assert.That(device.Context.TryRunOffLoop(work), Is.True);
        Assert.That(() => device.Context.TryRunOffLoop(work), Throws.InvalidOperationException);
        gate.Set();
        Assert.That(Wait.Until(() => work.Completions == 1), Is.True);
        Assert.That(Wait.Until(() => device.Context.TryRunOffLoop(work)), Is.True, "free again after its completion");
    }

    [Test]
    public void ItemsShareTheBoundWithDelegateWorkAndARefusedItemStaysFree()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, MaxOffLoopWork = 2 });
        server.AddDevice(device);
        server.Start();
        using var gate = new ManualResetEventSlim();
        var first = new GatedWork(gate);
        var third = new GatedWork(gate);

        bool a = device.Context.TryRunOffLoop(first);
        bool b = device.Context.TryRunOffLoop(token =>
        {
            gate.Wait(token);
            return true;
        }, _ => { });
        bool c = device.Context.TryRunOffLoop(third);
        bool thirdInFlight = third.IsInFlight;
        gate.Set();
        bool drained = Wait.Until(() => first.Completions == 1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((a, b, c), Is.EqualTo((true, true, false)), "the third exceeds the bound of two");
            Assert.That(thirdInFlight, Is.False, "a refused item is free");
            Assert.That(server.Statistics.RefusedOffLoopWork, Is.EqualTo(1));
            Assert.That(drained, Is.True);
            Assert.That(Wait.Until(() => device.Context.TryRunOffLoop(third)), Is.True, "places are freed as completions run");
        }
    }

    [Test]
    public void WorkThatThrowsIsCountedAndTheItemHearsOfItOnTheLoop()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        var work = new ThrowingWork(device.Context);

        Assert.That(device.Context.TryRunOffLoop(work), Is.True);
        bool failed = Wait.Until(() => work.Failures == 1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(failed, Is.True);
            Assert.That(work.Completions, Is.Zero, "no completion for failed work");
            Assert.That(work.FailedOnLoop, Is.True);
            Assert.That(work.Thrown, Is.TypeOf<InvalidOperationException>());
            Assert.That(guest.Server.Statistics.DeviceFaults, Is.EqualTo(1));
            Assert.That(guest.Server.IsRunning, Is.True, "contained");
            Assert.That(Wait.Until(() => !work.IsInFlight), Is.True, "and free for the next request");
        }
    }

    [Test]
    public void AStopDropsCompletionsAndFreesTheItems()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, MaxOffLoopWork = 4 });
        server.AddDevice(device);
        server.Start();
        using var gate = new ManualResetEventSlim();
        var running = new GatedWork(gate);
        var queued = new GatedWork(gate);

        Assert.That(device.Context.TryRunOffLoop(running), Is.True);
        Assert.That(device.Context.TryRunOffLoop(queued), Is.True);
        Assert.That(Wait.Until(() => running.Started), Is.True);
        server.Stop();
        bool cancelled = Wait.Until(() => running.Cancelled);
        bool freed = Wait.Until(() => !running.IsInFlight && !queued.IsInFlight);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(cancelled, Is.True, "the running item's token is cancelled by the stop");
            Assert.That(freed, Is.True, "both items are free after the stop");
            Assert.That(running.Completions + queued.Completions, Is.Zero, "no completion of a run that ended");
            Assert.That(queued.Started, Is.False, "queued work never runs");
            Assert.That((running.Drops, queued.Drops), Is.EqualTo((1, 1)), "each hears of its drop once, to release what it holds");
            Assert.That((running.InFlightWhenDropped, queued.InFlightWhenDropped), Is.EqualTo((true, true)), "before it is free to be queued again");
            Assert.That(device.Context.TryRunOffLoop(queued), Is.False, "a stopped server takes no work");
        }
    }

    [Test]
    public void ADropHookThatThrowsDoesNotStopTheTeardownAndTheItemIsFreed()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, MaxOffLoopWork = 4 });
        server.AddDevice(device);
        server.Start();
        using var gate = new ManualResetEventSlim();
        var running = new GatedWork(gate, throwWhenDropped: true);
        var queued = new GatedWork(gate, throwWhenDropped: true);
        Assert.That(device.Context.TryRunOffLoop(running), Is.True);
        Assert.That(device.Context.TryRunOffLoop(queued), Is.True);
        Assert.That(Wait.Until(() => running.Started), Is.True);

        server.Stop();
        bool freed = Wait.Until(() => !running.IsInFlight && !queued.IsInFlight);
        server.Start();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(freed, Is.True);
            Assert.That((running.Drops, queued.Drops), Is.EqualTo((1, 1)));
            Assert.That(server.IsRunning, Is.True, "the server stopped and started again");
            Assert.That(device.Context.TryRunOffLoop(queued), Is.True, "and the item is usable again");
        }

        gate.Set();
        Assert.That(Wait.Until(() => queued.Completions == 1), Is.True);
    }

    /// <summary>The loop's side of a reusable item — queueing it, dispatching its completion — allocates nothing.</summary>
    [Test]
    [Category("Allocation")]
    public void TheLoopSideOfReusableWorkAllocatesNothing()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        const int Passes = 3;
        const int Rounds = 2_000;
        var work = new MeasuringWork(device.Context, warmUp: 200, passes: Passes, rounds: Rounds);

        Assert.That(device.Context.TryRunOffLoop(work), Is.True);
        bool finished = Wait.Until(() => work.Done);
        long[] allocated = work.Allocated;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(finished, Is.True);
            Assert.That(work.Refused, Is.Zero);

            // Measured on the loop thread, from completion to completion: a pass covers the completion's dispatch,
            // the re-queue and the loop's wake-ups in between. A per-round allocation (24 bytes at the least) would
            // show in every pass; a one-off of the runtime's in one.
            Assert.That(allocated, Has.Some.Zero, $"bytes per pass: {string.Join(", ", allocated)}");
            Assert.That(allocated, Has.All.LessThan(Rounds * 24), "no pass allocates per round");
        }
    }

    [Test]
    public void ADevicesOwnWorkerRunsItemsInParallelAndCompletesThemOnTheLoop()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, MaxOffLoopWork = 1 });
        server.AddDevice(device);
        IOffLoopWorker worker = device.Context.CreateOffLoopWorker("test io", threadCount: 2, capacity: 2);
        bool beforeStart = worker.TryRun(new GatedWork(new ManualResetEventSlim(true)));
        server.Start();

        // Each item waits until both run: with one thread they never would (the token ends the wait at the stop).
        // Both also wait for release, so that they are still in flight (their places taken) when the third is tried.
        using var both = new CountdownEvent(2);
        using var release = new ManualResetEventSlim();
        var first = new RendezvousWork(both, release, device.Context);
        var second = new RendezvousWork(both, release, device.Context);
        bool a = worker.TryRun(first), b = worker.TryRun(second);
        bool third = worker.TryRun(new GatedWork(new ManualResetEventSlim(true)));
        release.Set();
        using var serverGate = new ManualResetEventSlim();
        bool serverWork = device.Context.TryRunOffLoop(new GatedWork(serverGate));
        bool met = Wait.Until(() => first.Completed && second.Completed);
        serverGate.Set();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(beforeStart, Is.False, "nothing is accepted before the server runs");
            Assert.That((a, b, third), Is.EqualTo((true, true, false)), "the worker's own bound of two");
            Assert.That(serverWork, Is.True, "the server's worker has its own bound: the device's items take none of its places");
            Assert.That(met, Is.True, "both items ran at once");
            Assert.That(first.MemoryUsableInComplete && second.MemoryUsableInComplete, Is.True, "completions on the loop");
            Assert.That(Wait.Until(() => worker.TryRun(first)), Is.True, "places are freed as completions run");
        }

        server.Stop();
        Assert.That(Wait.Until(() => !first.IsInFlight), Is.True, "the stop frees the item");
        Assert.That(worker.TryRun(second), Is.False, "a stopped server's device worker takes no work");
    }

    private sealed class RendezvousWork : OffLoopWork
    {
        private readonly CountdownEvent _both;
        private readonly ManualResetEventSlim _release;
        private readonly IDeviceContext _context;
        private volatile bool _completed;

        public RendezvousWork(CountdownEvent both, ManualResetEventSlim release, IDeviceContext context)
        {
            _both = both;
            _release = release;
            _context = context;
        }

        public bool Completed => _completed;

        public bool MemoryUsableInComplete { get; private set; }

        protected override void Execute(CancellationToken cancellationToken)
        {
            if (_both.CurrentCount > 0)
            {
                _both.Signal();
                _both.Wait(cancellationToken);
                _release.Wait(cancellationToken);
            }
        }

        protected override void Complete()
        {
            MemoryUsableInComplete = _context.Memory.TryRead(0x1000, new byte[1]);
            _completed = true;
        }
    }

    private sealed class SteppingWork : OffLoopWork
    {
        private readonly IDeviceContext _context;
        private readonly int _steps;
        private readonly byte[] _probe = new byte[4];

        public SteppingWork(IDeviceContext context, int steps)
        {
            _context = context;
            _steps = steps;
        }

        public int Executions { get; private set; }

        public int Completions { get; private set; }

        public int MemoryRefusedInExecute { get; private set; }

        public int MemoryUsableInComplete { get; private set; }

        public int InFlightInComplete { get; private set; }

        protected override void Execute(CancellationToken cancellationToken)
        {
            Executions++;
            try
            {
                _context.Memory.TryRead(0x1000, _probe);
            }
            catch (InvalidOperationException)
            {
                MemoryRefusedInExecute++;
            }
        }

        protected override void Complete()
        {
            if (_context.Memory.TryRead(0x1000, _probe))
            {
                MemoryUsableInComplete++;
            }

            if (IsInFlight)
            {
                InFlightInComplete++;
            }

            if (++Completions < _steps)
            {
                _context.TryRunOffLoop(this);
            }
        }
    }

    private sealed class GatedWork : OffLoopWork
    {
        private readonly ManualResetEventSlim _gate;
        private volatile bool _started;
        private volatile bool _cancelled;
        private int _completions;

        private int _drops;

        public GatedWork(ManualResetEventSlim gate, bool throwWhenDropped = false)
        {
            _gate = gate;
            ThrowWhenDropped = throwWhenDropped;
        }

        public bool ThrowWhenDropped { get; }

        public bool Started => _started;

        public int Drops => Volatile.Read(ref _drops);

        /// <summary>Whether the item was still in flight when it heard of its drop (it must be: it is freed after).</summary>
        public bool InFlightWhenDropped { get; private set; }

        public bool Cancelled => _cancelled;

        public int Completions => Volatile.Read(ref _completions);

        protected override void Execute(CancellationToken cancellationToken)
        {
            _started = true;
            try
            {
                _gate.Wait(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                _cancelled = true;
            }
        }

        protected override void Complete() => Interlocked.Increment(ref _completions);

        protected override void OnDropped()
        {
            InFlightWhenDropped = IsInFlight;
            Interlocked.Increment(ref _drops);
            if (ThrowWhenDropped)
            {
                throw new InvalidOperationException("a device's drop hook that throws");
            }
        }
    }

    private sealed class ThrowingWork : OffLoopWork
    {
        private readonly IDeviceContext _context;

        public ThrowingWork(IDeviceContext context) => _context = context;

        public int Completions { get; private set; }

        public int Failures { get; private set; }

        public bool FailedOnLoop { get; private set; }

        public Exception? Thrown { get; private set; }

        protected override void Execute(CancellationToken cancellationToken) => throw new InvalidOperationException("the work failed");

        protected override void Complete() => Completions++;

        protected override void Fail(Exception error)
        {
            Thrown = error;
            FailedOnLoop = _context.Memory.TryRead(0x1000, new byte[1]);
            Failures++;
        }
    }

    /// <summary>Queues itself again from its completion, reading the loop thread's allocation counter at pass boundaries.</summary>
    private sealed class MeasuringWork : OffLoopWork
    {
        private readonly IDeviceContext _context;
        private readonly int _warmUp;
        private readonly int _rounds;
        private readonly long[] _allocated;
        private int _round;
        private long _passStart;
        private volatile bool _done;

        public MeasuringWork(IDeviceContext context, int warmUp, int passes, int rounds)
        {
            _context = context;
            _warmUp = warmUp;
            _rounds = rounds;
            _allocated = new long[passes];
        }

        public bool Done => _done;

        public int Refused { get; private set; }

        public long[] Allocated => _allocated;

        protected override void Execute(CancellationToken cancellationToken)
        {
        }

        protected override void Complete()
        {
            int round = _round++;
            if (round >= _warmUp && (round - _warmUp) % _rounds == 0)
            {
                long now = GC.GetAllocatedBytesForCurrentThread();
                int pass = (round - _warmUp) / _rounds;
                if (pass > 0)
                {
                    _allocated[pass - 1] = now - _passStart;
                }

                if (pass == _allocated.Length)
                {
                    _done = true;
                    return;
                }

                _passStart = now;
            }

            if (!_context.TryRunOffLoop(this))
            {
                Refused++;
                _done = true;
            }
        }
    }
}
