using System;
using System.Collections.Generic;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>
/// Where a device's exception is contained: a single-element access's propagates out of <c>IoDispatcher.Dispatch</c>
/// to the caller's handler (<c>ContainFault</c>; the event loop's, around each request), which counts it, names the
/// device and answers as for an unclaimed access; a rep element's and a PCI_CONFIG access's are contained inside, so
/// the other elements are still served. <c>AThrowingDeviceIsContainedAndCounted</c> covers the loop end to end.
/// </summary>
public class DispatcherFaultContainmentTests
{
    private const ulong Mmio = 0xFEB0_0000;

    private readonly List<(string Device, Exception Exception)> _faults = new();

    [SetUp]
    public void ClearFaults() => _faults.Clear();

    [TestCase(IoreqDirection.Read, 0xFFFF_FFFFUL)]
    [TestCase(IoreqDirection.Write, 0xABCDUL)]
    public void A_single_access_fault_reaches_the_callers_handler_which_names_the_device_and_answers_unclaimed(IoreqDirection direction, ulong answer)
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { ThrowAt = offset => offset == 0x40 };
        var counters = new DispatchCounters();
        IoDispatcher dispatcher = Dispatcher(counters, device);
        var request = new IoRequest { Type = IoreqType.Copy, Address = Mmio + 0x40, Size = 4, Count = 1, Direction = direction, Data = 0xABCD };

        InvalidOperationException? thrown = Assert.Throws<InvalidOperationException>(() => dispatcher.Dispatch(in request));
        ulong data = dispatcher.ContainFault(in request, thrown!);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(data, Is.EqualTo(answer));
            Assert.That(counters.DeviceFault, Is.EqualTo(1));
            Assert.That(_faults, Has.Count.EqualTo(1));
            Assert.That(_faults[0].Device, Is.EqualTo(device.Name));
            Assert.That(_faults[0].Exception, Is.SameAs(thrown));
        }
    }

    [Test]
    public void A_fault_whose_region_the_handler_removed_is_reported_without_naming_another_device()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { ThrowAt = offset => offset == 0x40 };
        var counters = new DispatchCounters();
        IoDispatcher dispatcher = Dispatcher(counters, device);
        device.OnWrite = (_, _) => dispatcher.RemoveRange(device.Region);
        var request = new IoRequest { Type = IoreqType.Copy, Address = Mmio + 0x40, Size = 2, Count = 1, Data = 7 };

        Exception thrown = Assert.Throws<InvalidOperationException>(() => dispatcher.Dispatch(in request))!;
        ulong data = dispatcher.ContainFault(in request, thrown);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(data, Is.EqualTo(7UL));
            Assert.That(_faults, Has.Count.EqualTo(1));
            Assert.That(_faults[0].Device, Is.Not.EqualTo(device.Name).And.Contains("moved"));
        }
    }

    [Test]
    public void A_rep_elements_fault_is_contained_and_the_other_elements_are_still_written()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { ThrowAt = offset => offset == 0x44 };
        var counters = new DispatchCounters();
        IoDispatcher dispatcher = Dispatcher(counters, device);

        // rep stos of three dwords at 0x40, 0x44, 0x48: the middle one throws.
        var request = new IoRequest { Type = IoreqType.Copy, Address = Mmio + 0x40, Size = 4, Count = 3, Data = 0x5A5A_5A5A };
        ulong data = dispatcher.Dispatch(in request);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(data, Is.EqualTo(0x5A5A_5A5AUL));
            Assert.That(device.Calls, Is.EqualTo(new[] { (true, 0x40UL, 4, 0x5A5A_5A5AUL), (true, 0x48UL, 4, 0x5A5A_5A5AUL) }));
            Assert.That(counters.DeviceFault, Is.EqualTo(1));
            Assert.That(_faults, Has.Count.EqualTo(1));
            Assert.That(_faults[0].Device, Is.EqualTo(device.Name));
        }
    }

    [Test]
    public void A_buffered_writes_fault_is_contained_by_the_dispatcher()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio) { ThrowAt = offset => offset == 0x40 };
        var counters = new DispatchCounters();
        IoDispatcher dispatcher = Dispatcher(counters, device);

        dispatcher.DispatchBufferedWrite(IoreqType.Copy, Mmio + 0x40, 4, 1);
        dispatcher.DispatchBufferedWrite(IoreqType.Copy, Mmio + 0x80, 4, 2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(counters.DeviceFault, Is.EqualTo(1));
            Assert.That(device.Calls, Is.EqualTo(new[] { (true, 0x80UL, 4, 2UL) }));
        }
    }

    private IoDispatcher Dispatcher(DispatchCounters counters, RegisterFile device)
    {
        var dispatcher = new IoDispatcher(new NoMemory(), counters, (faulted, e) => _faults.Add((faulted.Name, e)));
        dispatcher.AddRange(RegionKind.Mmio, Mmio, Mmio + 0xFFF, device.Region);
        return dispatcher;
    }

    private sealed class NoMemory : IoreqSdk.Memory.IGuestMemory
    {
        public bool TryRead(ulong address, Span<byte> destination) => false;

        public bool TryWrite(ulong address, ReadOnlySpan<byte> source) => false;
    }
}
