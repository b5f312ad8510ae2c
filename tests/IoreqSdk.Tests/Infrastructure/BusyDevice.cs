using System;
using System.Threading;
using IoreqSdk.Devices;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>
/// A device whose read blocks the event loop until the test releases it (<see cref="Release"/>, or disposal): for
/// teardowns that must complete while a device call hangs. <see cref="Entered"/> is set once the loop is inside it.
/// </summary>
internal sealed class BusyDevice : DeviceModel, IDisposable
{
    public BusyDevice(ulong baseAddress)
        : base("busy") => AddMmioRegion(0x1000, baseAddress, AccessWidths.All);

    public ManualResetEventSlim Entered { get; } = new();

    public ManualResetEventSlim Release { get; } = new();

    public override ulong Read(DeviceRegion region, ulong offset, int size)
    {
        Entered.Set();
        Release.Wait();
        return 0;
    }

    public override void Write(DeviceRegion region, ulong offset, int size, ulong value)
    {
    }

    public void Dispose()
    {
        Release.Set();
        Entered.Dispose();
        Release.Dispose();
    }
}
