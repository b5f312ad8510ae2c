using System;
using System.Collections.Generic;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Memory;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Mmio;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Tests.Virtio.Mmio;

/// <summary>
/// A device context on the test's own thread: guest RAM is a <see cref="TestGuestRam"/>, posted work waits in a
/// bounded queue until the test runs it (as the loop would after answering the request).
/// </summary>
internal sealed class TestDeviceContext : IDeviceContext
{
    private readonly Queue<Action> _posted = new(64);

    public TestDeviceContext(IGuestMemory memory) => Memory = memory;

    /// <summary>The server's run (1 from the start; <see cref="StopAndRestart"/> counts it up).</summary>
    public long RunNumber { get; private set; } = 1;

    /// <summary>As a server's stop and start: what was posted is dropped, and the run number moves on.</summary>
    public void StopAndRestart()
    {
        _posted.Clear();
        RunNumber++;
    }

    public IGuestMemory Memory { get; }

    /// <summary>How many items the queue holds before it refuses (the server's MaxPostedWork).</summary>
    public int Capacity { get; set; } = 64;

    public int Posts { get; private set; }

    public int Refusals { get; private set; }

    public int Waiting => _posted.Count;

    public void MapRegion(DeviceRegion region, ulong address) => throw new NotSupportedException();

    public void UnmapRegion(DeviceRegion region) => throw new NotSupportedException();

    public void Post(Action work)
    {
        if (!TryPost(work))
        {
            throw new InvalidOperationException("full");
        }
    }

    public bool TryPost(Action work)
    {
        if (_posted.Count >= Capacity)
        {
            Refusals++;
            return false;
        }

        Posts++;
        _posted.Enqueue(work);
        return true;
    }

    public bool TryRunOffLoop<TResult>(Func<CancellationToken, TResult> work, Action<TResult> completion) => false;

    public bool TryRunOffLoop(OffLoopWork work) => false;

    public IOffLoopWorker CreateOffLoopWorker(string name, int threadCount, int capacity) => throw new NotSupportedException();

    /// <summary>Runs what was posted before the call, as one turn of the loop does; returns how many ran.</summary>
    public int RunPosted()
    {
        int count = _posted.Count;
        for (int i = 0; i < count; i++)
        {
            _posted.Dequeue()();
        }

        return count;
    }
}

/// <summary>A virtio-mmio transport driven directly from the test thread: register accesses as the dispatcher makes them.</summary>
internal sealed class MmioRig
{
    public const ulong Base = VirtioMmioTransport.Arm64WindowBase;

    public MmioRig(VirtioDevice device)
    {
        Ram = new TestGuestRam(VirtioRig.RamBase, 1 << 20);
        Context = new TestDeviceContext(Ram);
        Line = InterruptLine.Create("test line", level => LevelChanges++);
        Device = device;
        Transport = new VirtioMmioTransport(device, Base, Line);
        Transport.Attach(Context);
    }

    public TestGuestRam Ram { get; }

    public TestDeviceContext Context { get; }

    public InterruptLine Line { get; }

    public VirtioDevice Device { get; }

    public VirtioMmioTransport Transport { get; }

    public int LevelChanges { get; private set; }

    public uint Read(int offset, int size = 4) => (uint)Transport.Read(Transport.Registers, (ulong)offset, size);

    public void Write(int offset, ulong value, int size = 4) => Transport.Write(Transport.Registers, (ulong)offset, size, value);

    public void Status(VirtioDeviceStatus status) => Write(R.Status, (uint)status);

    /// <summary>ACKNOWLEDGE, DRIVER, the features, FEATURES_OK.</summary>
    public void Negotiate(ulong features)
    {
        features |= VirtioFeatures.Version1;
        Status(VirtioDeviceStatus.Acknowledge);
        Status(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver);
        Write(R.DriverFeaturesSel, 1);
        Write(R.DriverFeatures, features >> 32);
        Write(R.DriverFeaturesSel, 0);
        Write(R.DriverFeatures, (uint)features);
        Status(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk);
    }

    /// <summary>Queue <paramref name="queue"/> at the rig's fixed ring addresses (queue 1 a MiB/8 further), enabled.</summary>
    public void SetUpQueue(int queue, ushort size)
    {
        ulong shift = (ulong)queue * 0x2_0000;
        Write(R.QueueSel, (uint)queue);
        Write(R.QueueNum, size);
        WriteAddress(R.QueueDescLow, VirtioRig.DescriptorArea + shift);
        WriteAddress(R.QueueDriverLow, VirtioRig.DriverArea + shift);
        WriteAddress(R.QueueDeviceLow, VirtioRig.DeviceArea + shift);
        Write(R.QueueReady, 1);
    }

    public void WriteAddress(int lowRegister, ulong address)
    {
        Write(lowRegister, (uint)address);
        Write(lowRegister + 4, address >> 32);
    }

    /// <summary>Negotiates, sets up queue 0 (and 1 if asked), DRIVER_OK.</summary>
    public void Start(ulong features = 0, ushort size = 16, int queues = 1)
    {
        Negotiate(features);
        for (int q = 0; q < queues; q++)
        {
            SetUpQueue(q, size);
        }

        Status(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk | VirtioDeviceStatus.DriverOk);
    }
}
