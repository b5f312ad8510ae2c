using System;
using System.Security.Cryptography;
using System.Threading;
using IoreqSdk.Devices;
using IoreqSdk.Devices.Virtio.Blk;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Blk;

/// <summary>
/// virtio-blk with a real server's context: its file I/O on the server's worker thread or on threads of its own, its
/// completions on the event loop (every device call is made on the loop, as a transport would make it).
/// </summary>
[TestFixture]
public sealed class VirtioBlkServerWorkerTests
{
    [Test]
    public void IoRunsOffTheLoopAndTheFlushedFileHashesEqual([Values(0, 3)] int ioThreads)
    {
        var host = new RegisterFile(RegionKind.Mmio, 0x1000, 0xFEB0_0000);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, host);
        using var rig = new BlkRig(4 << 20, new VirtioBlkOptions { IoThreads = ioThreads }, context: host.Context);
        const int Length = 200 * 1024;
        byte[] pattern = BlkRig.Pattern(Length, 11);
        pattern.CopyTo(rig.Ram.Span(BlkRig.Data, Length));
        byte[] expected = new byte[4 << 20];
        pattern.CopyTo(expected, 3000 * 512);

        OnLoop(host.Context, () => rig.Write(3000, BlkRig.Data, Length, slot: 0));
        bool written = Wait.Until(() => OnLoop(host.Context, () => rig.Ram.Span(BlkRig.Status(0), 1)[0]) == VirtioBlkTypes.Ok);
        OnLoop(host.Context, () => rig.Post(VirtioBlkTypes.Flush, 0, ReadOnlySpan<GuestBuffer>.Empty, slot: 1));
        bool flushed = Wait.Until(() => OnLoop(host.Context, () => rig.Ram.Span(BlkRig.Status(1), 1)[0]) == VirtioBlkTypes.Ok);
        byte[] file = rig.FileBytes();
        ulong into = BlkRig.Data + 0x8_0000;
        OnLoop(host.Context, () => rig.Read(3000, into, Length, slot: 2));
        bool read = Wait.Until(() => OnLoop(host.Context, () => rig.Ram.Span(BlkRig.Status(2), 1)[0]) == VirtioBlkTypes.Ok);
        byte[] back = OnLoop(host.Context, () => rig.Ram.Span(into, Length).ToArray());

        using (Assert.EnterMultipleScope())
        {
            Assert.That((written, flushed, read), Is.EqualTo((true, true, true)));
            Assert.That(SHA256.HashData(file), Is.EqualTo(SHA256.HashData(expected)));
            Assert.That(back, Is.EqualTo(pattern));
            Assert.That(guest.Server.Statistics.DeviceFaults, Is.Zero);
            Assert.That(OnLoop(host.Context, () => rig.TakeUsed().Count), Is.EqualTo(3));
        }
    }

    /// <summary>Runs <paramref name="work"/> on the server's loop and returns its result.</summary>
    private static T OnLoop<T>(IDeviceContext context, Func<T> work)
    {
        T result = default!;
        using var done = new ManualResetEventSlim();
        context.Post(() =>
        {
            result = work();
            done.Set();
        });
        if (!done.Wait(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException("the loop did not run the posted work");
        }

        return result;
    }
}
