using System;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Hypervisor;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Engine;

/// <summary>
/// Requests real Xen never sends, written straight into the slot: each must be answered (the vCPU is released),
/// nothing may escape the server, and the domain must stay alive.
/// </summary>
[TestFixture]
public sealed class HostileRequestTests
{
    private const ulong Mmio = 0xFEB0_0000;

    private static readonly object[] s_corpus =
    {
        new object[] { "size 0", Make(IoreqType.Copy, Mmio, 0, 1, read: true) },
        new object[] { "size 3", Make(IoreqType.Copy, Mmio, 3, 1, read: true) },
        new object[] { "size 16", Make(IoreqType.Copy, Mmio, 16, 1, read: false) },
        new object[] { "PIO size 8", Make(IoreqType.Pio, 0x3F8, 8, 1, read: true) },
        new object[] { "count 0", Make(IoreqType.Copy, Mmio, 4, 0, read: false) },
        new object[] { "count 2^32-1 rep stos", Make(IoreqType.Copy, Mmio, 4, uint.MaxValue, read: false) },
        new object[] { "count 2^32-1 through RAM", Make(IoreqType.Copy, Mmio, 4, uint.MaxValue, read: true, pointer: 0x1000) },
        new object[] { "data_is_ptr to unmapped RAM", Make(IoreqType.Copy, Mmio, 4, 4, read: true, pointer: 0xFFFF_FFFF_0000) },
        new object[] { "data_is_ptr wrapping the address space", Make(IoreqType.Copy, Mmio, 8, 4, read: false, pointer: ulong.MaxValue - 7, down: false) },
        new object[] { "address wrapping the address space", Make(IoreqType.Copy, ulong.MaxValue - 1, 4, 1, read: true) },
        new object[] { "rep wrapping downwards from 0", Make(IoreqType.Copy, 4, 4, 16, read: false, down: true) },
        new object[] { "unknown type 0x63", Make((IoreqType)0x63, Mmio, 4, 1, read: true) },
        new object[] { "PCI_CONFIG register 0x1000", Make(IoreqType.PciConfig, 0x1000, 4, 1, read: true) },
        new object[] { "PCI_CONFIG misaligned", Make(IoreqType.PciConfig, 0x3, 4, 1, read: true) },
        new object[] { "synchronous TIMEOFFSET", Make(IoreqType.TimeOffset, 0, 8, 1, read: false) },
    };

    [TestCaseSource(nameof(s_corpus))]
    public void IsAnsweredAndTheDomainLives(string name, IoRequest request)
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);

        ulong data = guest.Cpu.SendRaw(guest.Server.Id, request);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Xen.CrashReason, Is.Null, name);
            bool unservable = request.Type is not (IoreqType.Copy or IoreqType.Pio) || request.Size is 0 or 3 or 16 || (request.Type == IoreqType.Pio && request.Size > 4);
            if (request.IsRead && !request.DataIsPointer && unservable)
            {
                Assert.That(data & 0xFFFF_FFFF, Is.EqualTo(0xFFFF_FFFFUL), "an unservable read answers all-ones");
            }

            Assert.That(guest.Cpu.ReadMmio(Mmio, 4), Is.Zero, "the server still serves normal requests");
        }
    }

    [Test]
    public void TheSlotRewrittenWhileHandledChangesNothing()
    {
        var device = new RegisterFile(RegionKind.Mmio, 0x1000, Mmio);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, device);
        guest.Cpu.WriteMmio(Mmio + 0x20, 4, 0x1234_5678);
        device.OnRead = (_, _) =>
        {
            // While the server handles the read, a hostile party rewrites every field of the shared slot.
            ref IoRequest slot = ref guest.Xen.Slot(guest.Server.Id, 0);
            slot.Address = 0;
            slot.Size = 16;
            slot.Count = uint.MaxValue;
            slot.Type = IoreqType.Pio;
            slot.DataIsPointer = true;
        };

        ulong value = guest.Cpu.ReadMmio(Mmio + 0x20, 4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(value, Is.EqualTo(0x1234_5678UL), "the answer is for the request as it was copied");
            Assert.That(device.Calls[^1], Is.EqualTo((false, 0x20UL, 4, 0x1234_5678UL)));
            Assert.That(guest.Xen.CrashReason, Is.Null);
        }
    }

    [Test]
    public void ARingWritePointerFarAheadIsSkippedNotServed()
    {
        var vga = new RegisterFile(RegionKind.Mmio, 0x20000, 0xA0000);
        using var guest = new SimulatedGuest(GuestArchitecture.X86, 1, vga);
        guest.Xen.CorruptRingWritePointer(guest.Server.Id, 600);
        guest.Cpu.WriteMmio(0xA0010, 4, 0x55);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Cpu.ReadMmio(0xA0010, 4), Is.EqualTo(0x55UL));
            Assert.That(guest.Server.Statistics.MalformedRequests, Is.EqualTo(1));
            Assert.That(guest.Xen.CrashReason, Is.Null);
        }
    }

    private static IoRequest Make(IoreqType type, ulong address, uint size, uint count, bool read, ulong? pointer = null, bool down = false) => new()
    {
        Type = type,
        Address = address,
        Size = size,
        Count = count,
        Direction = read ? IoreqDirection.Read : IoreqDirection.Write,
        DataIsPointer = pointer is not null,
        Data = pointer ?? 0xDEAD_BEEF,
        DirectionFlag = down,
    };
}
