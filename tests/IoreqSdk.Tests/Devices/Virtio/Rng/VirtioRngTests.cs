using System;
using System.IO;
using System.Linq;
using IoreqSdk.Devices.Virtio.Rng;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Rng;

/// <summary>
/// virtio-rng (virtio 1.2 §5.4) end to end over virtio-mmio and virtio-pci (MSI-X on x86, INTx and the ISR on Arm64),
/// on x86 and Arm64 guests, split and packed rings.
/// </summary>
[TestFixture(VirtioTransportKind.Mmio, GuestArchitecture.X86, 0ul)]
[TestFixture(VirtioTransportKind.Mmio, GuestArchitecture.Arm64, 0ul)]
[TestFixture(VirtioTransportKind.Mmio, GuestArchitecture.X86, VirtioFeatures.RingPacked | VirtioFeatures.EventIndex)]
[TestFixture(VirtioTransportKind.Mmio, GuestArchitecture.Arm64, VirtioFeatures.RingPacked | VirtioFeatures.EventIndex)]
[TestFixture(VirtioTransportKind.Pci, GuestArchitecture.X86, 0ul)]
[TestFixture(VirtioTransportKind.Pci, GuestArchitecture.Arm64, 0ul)]
[TestFixture(VirtioTransportKind.Pci, GuestArchitecture.X86, VirtioFeatures.RingPacked | VirtioFeatures.EventIndex)]
[TestFixture(VirtioTransportKind.Pci, GuestArchitecture.Arm64, VirtioFeatures.RingPacked | VirtioFeatures.EventIndex)]
public sealed class VirtioRngTests
{
    private readonly VirtioTransportKind _transport;
    private readonly GuestArchitecture _architecture;
    private readonly ulong _features;

    public VirtioRngTests(VirtioTransportKind transport, GuestArchitecture architecture, ulong features)
    {
        _transport = transport;
        _architecture = architecture;
        _features = features;
    }

    [Test]
    public void The_device_is_an_entropy_device_with_one_queue_and_no_config()
    {
        var rng = new VirtioRng();
        using var guest = Create(rng);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(guest.Transport.DeviceType, Is.EqualTo(4));
            Assert.That(rng.QueueCount, Is.EqualTo(1));
            Assert.That(rng.ConfigSize, Is.Zero);
            Assert.That(guest.Transport.ReadQueueMaxSize(1), Is.Zero);
            Assert.That(guest.Driver.Features, Is.EqualTo(VirtioFeatures.Version1 | _features));
        }
    }

    [Test]
    public void A_writable_buffer_comes_back_full_of_the_source_bytes()
    {
        var source = new CountingSource();
        using var guest = Create(new VirtioRng(source));
        ulong buffer = guest.Driver.Allocate(64);
        ushort id = guest.Driver.Submit(0, new GuestBuffer[] { new(buffer, 64, true) });
        (ushort usedId, uint length) = TakeUsed(guest);
        byte[] expected = Enumerable.Range(1, 64).Select(i => (byte)i).ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(usedId, Is.EqualTo(id));
            Assert.That(length, Is.EqualTo(64u));
            Assert.That(guest.Memory.Span(buffer, 64).ToArray(), Is.EqualTo(expected));
        }
    }

    [Test]
    public void The_system_source_delivers_bytes_that_are_not_all_zero()
    {
        var rng = new VirtioRng();
        using var guest = Create(rng);
        ulong buffer = guest.Driver.Allocate(256);
        guest.Driver.Submit(0, new GuestBuffer[] { new(buffer, 256, true) });
        (_, uint length) = TakeUsed(guest);
        Assert.That(length, Is.EqualTo(256u));
        Assert.That(guest.Memory.Span(buffer, 256).ToArray().Count(b => b != 0), Is.GreaterThan(128), "of 256 random bytes, about 255 are non-zero");
        Assert.That(rng.BytesDelivered, Is.EqualTo(256));
    }

    [Test]
    public void A_chain_of_several_writable_pieces_is_filled_across_them()
    {
        using var guest = Create(new VirtioRng(new CountingSource()));
        ulong a = guest.Driver.Allocate(3);
        ulong b = guest.Driver.Allocate(5);
        guest.Driver.Submit(0, new GuestBuffer[] { new(a, 3, true), new(b, 5, true) });
        (_, uint length) = TakeUsed(guest);
        Assert.That(length, Is.EqualTo(8u));
        Assert.That(guest.Memory.Span(a, 3).ToArray().Concat(guest.Memory.Span(b, 5).ToArray()), Is.EqualTo(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }));
    }

    [Test]
    public void A_zero_length_buffer_comes_back_with_length_0()
    {
        var rng = new VirtioRng(new CountingSource());
        using var guest = Create(rng);
        ulong buffer = guest.Driver.Allocate(16);
        guest.Driver.Submit(0, new GuestBuffer[] { new(buffer, 0, true) });
        (_, uint length) = TakeUsed(guest);
        Assert.That(length, Is.Zero);
        Assert.That(guest.Memory.Span(buffer, 16).ToArray(), Has.All.Zero);
        Assert.That(rng.BuffersReturned, Is.EqualTo(1));
    }

    [Test]
    public void A_device_readable_buffer_is_never_read_nor_written_and_comes_back_empty()
    {
        var rng = new VirtioRng(new CountingSource());
        using var guest = Create(rng);
        ulong readOnly = guest.Driver.Allocate(16);
        guest.Memory.Span(readOnly, 16).Fill(0xEE);
        guest.Driver.Submit(0, new GuestBuffer[] { new(readOnly, 16, false) });
        (_, uint length) = TakeUsed(guest);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(length, Is.Zero);
            Assert.That(guest.Memory.Span(readOnly, 16).ToArray(), Has.All.EqualTo(0xEE));
            Assert.That(rng.ReadOnlyBuffers, Is.EqualTo(1));
            Assert.That(guest.Device.Status & VirtioDeviceStatus.DeviceNeedsReset, Is.EqualTo(VirtioDeviceStatus.None));
        }

        // A mixed buffer: the readable part is left alone, the writable part filled.
        ulong writable = guest.Driver.Allocate(4);
        guest.Driver.Submit(0, new GuestBuffer[] { new(readOnly, 16, false), new(writable, 4, true) });
        (_, uint mixed) = TakeUsed(guest);
        Assert.That(mixed, Is.EqualTo(4u));
        Assert.That(guest.Memory.Span(readOnly, 16).ToArray(), Has.All.EqualTo(0xEE));
    }

    [Test]
    public void A_buffer_larger_than_the_cap_gets_the_cap()
    {
        var rng = new VirtioRng(new CountingSource(), maxBytesPerBuffer: 4096);
        using var guest = Create(rng);
        ulong buffer = guest.Driver.Allocate(64 * 1024);
        guest.Driver.Submit(0, new GuestBuffer[] { new(buffer, 16 * 1024, true), new(buffer + (16 * 1024), 48 * 1024, true) });
        (_, uint length) = TakeUsed(guest);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(length, Is.EqualTo(4096u));
            Assert.That(guest.Memory.Span(buffer + 4094, 1)[0], Is.EqualTo(255), "the cap's last bytes are the source's 4095th");
            Assert.That(guest.Memory.Span(buffer + 4096, 60 * 1024).ToArray(), Has.All.Zero, "nothing past what was reported");
        }
    }

    [Test]
    public void Buffers_beyond_a_pass_budget_are_taken_in_later_passes()
    {
        var rng = new VirtioRng(new CountingSource(), maxBytesPerBuffer: 1024, maxBytesPerPass: 2048);
        using var guest = Create(rng);
        const int Count = 10;
        ulong area = guest.Driver.Allocate(Count * 1024);
        for (int i = 0; i < Count; i++)
        {
            guest.Queues[0].Post(new GuestBuffer[] { new(area + ((ulong)i * 1024), 1024, true) });
        }

        guest.Driver.Kick(0);
        int taken = 0;
        uint total = 0;
        Assert.That(SimulatedVirtioGuest.WaitUntil(() =>
        {
            if (guest.Transport.InterruptPending)
            {
                guest.Driver.TakeInterrupts();
            }

            while (guest.Driver.TryTakeUsed(0, out _, out uint length))
            {
                taken++;
                total += length;
            }

            return taken == Count;
        }), Is.True, $"{taken} of {Count} buffers came back");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(total, Is.EqualTo(Count * 1024u));
            Assert.That(rng.ContinuedPasses, Is.GreaterThanOrEqualTo(4), "two buffers a pass");
            Assert.That(rng.RefusedContinuations, Is.Zero);
        }
    }

    [Test]
    public void Caps_are_validated()
    {
        Assert.That(() => new VirtioRng(maxBytesPerBuffer: 0), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => new VirtioRng(maxBytesPerBuffer: 100, maxBytesPerPass: 99), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void A_source_that_throws_gives_its_buffer_back_empty_and_the_next_buffer_is_filled()
    {
        // The host's source fails once (a device fault, contained by the loop): the buffer it was filling goes back with
        // length 0 and its chain is free again; held, every later pop would have refused the chain.
        var source = new ThrowingOnceSource();
        using var guest = Create(new VirtioRng(source));
        ulong first = guest.Driver.Allocate(64);
        ushort firstId = guest.Driver.Submit(0, new GuestBuffer[] { new(first, 64, true) });
        (ushort usedFirst, uint firstLength) = TakeUsed(guest);

        // Posted only after the failed pass: its kick is sent only if that pass turned notifications on again.
        ulong second = guest.Driver.Allocate(64);
        ushort secondId = guest.Driver.Submit(0, new GuestBuffer[] { new(second, 64, true) });
        (ushort usedSecond, uint secondLength) = TakeUsed(guest);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(source.Throws, Is.EqualTo(1));
            Assert.That((usedFirst, firstLength), Is.EqualTo((firstId, 0u)));
            Assert.That((usedSecond, secondLength), Is.EqualTo((secondId, 64u)));
            Assert.That(guest.Memory.Span(first, 64).ToArray(), Is.All.Zero, "nothing of the failed fill reached the guest");
        }
    }

    private static (ushort Id, uint Length) TakeUsed(SimulatedVirtioGuest guest)
    {
        Assert.That(guest.Driver.WaitForUsed(0, out ushort id, out uint length), Is.True, "the device returned the buffer");
        return (id, length);
    }

    private SimulatedVirtioGuest Create(VirtioRng rng) =>
        SimulatedVirtioGuest.Create(rng, _transport, _architecture, features: _features);

    /// <summary>Throws at its first call, then fills with 0x5A.</summary>
    private sealed class ThrowingOnceSource : IRandomSource
    {
        public int Throws { get; private set; }

        public void Fill(Span<byte> destination)
        {
            if (Throws == 0)
            {
                Throws++;
                throw new IOException("The entropy source failed.");
            }

            destination.Fill(0x5A);
        }
    }

    /// <summary>Bytes 1, 2, 3, … across calls: what arrived where can be checked.</summary>
    private sealed class CountingSource : IRandomSource
    {
        private byte _next;

        public void Fill(Span<byte> destination)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                destination[i] = ++_next;
            }
        }
    }
}
