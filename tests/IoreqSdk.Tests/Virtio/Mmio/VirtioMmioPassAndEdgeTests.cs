using IoreqSdk.Devices.Virtio.Console;
using IoreqSdk.Simulation.Virtio;
using NUnit.Framework;
using R = IoreqSdk.Virtio.Mmio.VirtioMmioRegisters;

namespace IoreqSdk.Tests.Virtio.Mmio;

/// <summary>
/// What a review found a guest could do: keep one device pass going for ever, lose an interrupt on an edge-triggered
/// line, or be left unserved after a server restart. Each is refused now.
/// </summary>
[TestFixture]
public sealed class VirtioMmioPassAndEdgeTests
{
    private const ulong In = VirtioRig.Buffers;
    private const ulong Out = VirtioRig.Buffers + 0x1_0000;

    // Linux's vm_interrupt reads InterruptStatus and acks exactly that. A used buffer raised between the two left the
    // bit set and the line high: an edge-triggered line (libxl's node says rising edge; ISA IRQs are edges) never rose
    // again, and the buffer — and every later one — went unseen.
    [Test]
    public void A_cause_raised_between_the_drivers_status_read_and_its_ack_gets_a_new_edge()
    {
        var device = new EchoDevice(0);
        var rig = new MmioRig(device);
        rig.Start();
        var driver = new GuestSplitVirtqueue(rig.Ram, 16, VirtioRig.DescriptorArea, VirtioRig.DriverArea, VirtioRig.DeviceArea, eventIndex: false);
        device.Change(7);
        long before = rig.Line.Assertions;
        uint status = rig.Read(R.InterruptStatus);

        driver.Post([new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true)]);
        rig.Write(R.QueueNotify, 0);
        rig.Context.RunPosted();
        rig.Write(R.InterruptAck, status);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(status, Is.EqualTo(R.InterruptConfigChange), "the driver saw the config change only");
            Assert.That(rig.Read(R.InterruptStatus), Is.EqualTo(R.InterruptUsedBuffer), "the used buffer is still pending");
            Assert.That(rig.Line.IsAsserted, Is.True);
            Assert.That(rig.Line.Assertions, Is.EqualTo(before + 1), "a new rising edge for it");
        }
    }

    // A pass of the console's transmit queue had no bound: buffers it cannot read come back at once, and a guest that
    // re-posts them as fast as they come back kept the loop in one pass (200,001 buffers in the review's test).
    [Test]
    public void A_pass_over_a_queue_is_bounded_and_the_rest_continues_in_a_later_pass()
    {
        var console = new VirtioConsoleDevice(null, queueSize: 512);
        var rig = new MmioRig(console);
        rig.Start(size: 512, queues: 2);
        const ulong Shift = 0x2_0000;
        var transmit = new GuestSplitVirtqueue(rig.Ram, 512, VirtioRig.DescriptorArea + Shift, VirtioRig.DriverArea + Shift, VirtioRig.DeviceArea + Shift, eventIndex: false);
        ulong outsideRam = VirtioRig.RamBase + (1UL << 20) + 0x1000;
        for (int i = 0; i < 400; i++)
        {
            transmit.Post([new GuestBuffer(outsideRam, 4, false)]);
        }

        rig.Write(R.QueueNotify, 1);
        rig.Context.RunPosted();
        long firstPass = console.MalformedBuffers;
        int continuations = rig.Context.Waiting;
        rig.Context.RunPosted();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(firstPass, Is.EqualTo(VirtioConsoleDevice.MaxBuffersPerPass), "one pass stops at its budget");
            Assert.That(continuations, Is.EqualTo(1), "and asks for a later pass");
            Assert.That(console.MalformedBuffers, Is.EqualTo(400), "which takes the rest");
        }
    }

    // A pass posted but dropped by a server stop left the doorbell deferral believing a pass was coming: after the
    // restart every doorbell was coalesced into it, and a driver that kicks once (event index) waited for ever.
    [Test]
    public void A_doorbell_after_a_restart_is_served_though_the_pass_of_the_last_run_was_dropped()
    {
        var rig = new MmioRig(new EchoDevice(0));
        rig.Start();
        var driver = new GuestSplitVirtqueue(rig.Ram, 16, VirtioRig.DescriptorArea, VirtioRig.DriverArea, VirtioRig.DeviceArea, eventIndex: false);
        rig.Ram.SetU32(In, 1);
        driver.Post([new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true)]);
        rig.Write(R.QueueNotify, 0);
        rig.Context.StopAndRestart();

        driver.Post([new GuestBuffer(In, 4, false), new GuestBuffer(Out, 4, true)]);
        rig.Write(R.QueueNotify, 0);
        int passes = rig.Context.RunPosted();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(passes, Is.EqualTo(1));
            Assert.That(driver.TryTakeUsed(out _, out _), Is.True, "both buffers served");
            Assert.That(driver.TryTakeUsed(out _, out _), Is.True);
        }
    }
}
