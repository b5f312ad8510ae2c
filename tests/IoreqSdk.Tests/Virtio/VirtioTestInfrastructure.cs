using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using IoreqSdk.Memory;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;

namespace IoreqSdk.Tests.Virtio;

/// <summary>
/// Guest RAM as one byte array at a base address; every access outside it is refused and counted. With
/// <c>inPlace</c> it also gives host addresses (inside one 4 KiB guest page, as the server's map cache does), so the
/// queue serves its rings in place; without, it refuses them and the queue copies. With <c>pinnable</c> it pins
/// (<see cref="IPinnableGuestMemory"/>) in pieces that end at every 64 KiB boundary — where a mapping window of the
/// server's would end — and counts the pins held; without, every pin is refused (the copies then).
/// </summary>
internal sealed unsafe class TestGuestRam : IDirectGuestMemory, IPinnableGuestMemory
{
    public const int PinWindow = 64 * 1024;

    private readonly byte[] _bytes;
    private readonly bool _inPlace;
    private readonly bool _pinnable;
    private readonly PinCounter _pins = new();
    private long _generation;

    public TestGuestRam(ulong baseAddress, int size, bool inPlace = false, bool pinnable = false)
    {
        Base = baseAddress;
        _inPlace = inPlace;
        _pinnable = pinnable;

        // Pinned: a host address given out must not move under the queue.
        _bytes = GC.AllocateArray<byte>(size, pinned: true);
    }

    public long MappingGeneration => _generation;

    /// <summary>Host addresses given out so far.</summary>
    public int HostAddressesGiven { get; private set; }

    /// <summary>As an INVALIDATE or an eviction would: every host address given out before is stale.</summary>
    public void DropMappings() => _generation++;

    public bool TryGetHostAddress(ulong address, int length, out nint hostAddress)
    {
        hostAddress = 0;
        if (!_inPlace || length < 1 || (address & 0xFFF) + (ulong)length > 0x1000 || !TryOffset(address, length, out int offset))
        {
            return false;
        }

        HostAddressesGiven++;
        hostAddress = (nint)Unsafe.AsPointer(ref _bytes[offset]);
        return true;
    }

    public ulong Base { get; }

    public ulong End => Base + (ulong)_bytes.Length;

    /// <summary>Pins given and not yet released.</summary>
    public int PinsHeld => _pins.Held;

    /// <summary>Pins given in all.</summary>
    public int PinsGiven { get; private set; }

    public bool TryPin(ulong address, int length, out HostBuffer buffer, out GuestMemoryPin pin)
    {
        buffer = default;
        pin = default;
        int take = (int)Math.Min((ulong)length, PinWindow - ((address - Base) % PinWindow));
        if (!_pinnable || length < 1 || !TryOffset(address, take, out int offset))
        {
            return false;
        }

        PinsGiven++;
        pin = _pins.Pin();
        buffer = new HostBuffer((nint)Unsafe.AsPointer(ref _bytes[offset]), take);
        return true;
    }

    /// <summary>Accesses that named any byte outside RAM (refused, nothing copied).</summary>
    public int RefusedAccesses { get; private set; }

    public bool TryRead(ulong address, Span<byte> destination)
    {
        if (!TryOffset(address, destination.Length, out int offset))
        {
            return false;
        }

        _bytes.AsSpan(offset, destination.Length).CopyTo(destination);
        return true;
    }

    public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        if (!TryOffset(address, source.Length, out int offset))
        {
            return false;
        }

        source.CopyTo(_bytes.AsSpan(offset, source.Length));
        return true;
    }

    public Span<byte> Span(ulong address, int length)
    {
        if (!TryOffset(address, length, out int offset))
        {
            throw new ArgumentOutOfRangeException(nameof(address), "The test addressed memory outside its RAM.");
        }

        return _bytes.AsSpan(offset, length);
    }

    public ushort U16(ulong address) => BinaryPrimitives.ReadUInt16LittleEndian(Span(address, 2));

    public uint U32(ulong address) => BinaryPrimitives.ReadUInt32LittleEndian(Span(address, 4));

    public void SetU16(ulong address, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(Span(address, 2), value);

    public void SetU32(ulong address, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Span(address, 4), value);

    public void SetU64(ulong address, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Span(address, 8), value);

    /// <summary>Writes one 16-byte descriptor (split and packed share the layout up to the last two fields).</summary>
    public void SetDescriptor(ulong address, ulong bufferAddress, uint length, ushort third, ushort flags)
    {
        SetU64(address, bufferAddress);
        SetU32(address + 8, length);
        SetU16(address + 12, third);
        SetU16(address + 14, flags);
    }

    private bool TryOffset(ulong address, int length, out int offset)
    {
        offset = 0;
        if (address < Base || address - Base > (ulong)_bytes.Length || (ulong)length > (ulong)_bytes.Length - (address - Base))
        {
            RefusedAccesses++;
            return false;
        }

        offset = (int)(address - Base);
        return true;
    }
}

/// <summary>Pins of test memory: the SDK's own pin type over one mapping that is never dropped, so the count tells what is held.</summary>
internal sealed class PinCounter
{
    private readonly PinnedMapping _mapping = new(new NoPages(), firstFrame: 0, owner: null, oneOff: false);

    public int Held => _mapping.PinCount;

    public GuestMemoryPin Pin() => _mapping.Pin();

    private sealed class NoPages : IoreqSdk.Hypervisor.IMappedPages
    {
        public nint Address => 0;

        public int PageCount => 0;

        public void Dispose()
        {
        }
    }
}

/// <summary>A transport that only counts what the device asked for.</summary>
internal sealed class TestTransport : IVirtioTransport
{
    public TestTransport(IGuestMemory memory) => Memory = memory;

    public IGuestMemory Memory { get; }

    public int UsedNotifications { get; private set; }

    public int ConfigChanges { get; private set; }

    public void NotifyUsedBuffers(int queueIndex) => UsedNotifications++;

    public void NotifyConfigChange() => ConfigChanges++;
}

/// <summary>
/// A device with two queues that, when <see cref="Echo"/> is on, copies each chain's readable bytes into its writable
/// part; with it off, tests drive the queues themselves.
/// </summary>
internal sealed class EchoDevice : VirtioDevice
{
    public const ushort TypeId = 0x7F;
    public const ulong DeviceFeature = 1UL << 3;

    private readonly byte[] _buffer = new byte[4096];
    private readonly VirtioDescriptorChain _chain = new();

    public EchoDevice(ulong features, ushort maxSize = 256)
        : base(TypeId, features | DeviceFeature, new[] { maxSize, maxSize }, configSize: 8)
    {
        Config[0] = 0xA5;
    }

    public bool Echo { get; set; } = true;

    public int Notified { get; private set; }

    public int Resets { get; private set; }

    public int DataFaults { get; private set; }

    public void Change(byte value) => ChangeConfig(1, new[] { value });

    protected override void OnQueueNotified(VirtioQueue queue)
    {
        Notified++;
        if (!Echo)
        {
            return;
        }

        do
        {
            queue.DisableNotifications();
            while (queue.TryPop(_chain))
            {
                int length = (int)Math.Min((ulong)_buffer.Length, Math.Min(_chain.ReadableLength, _chain.WritableLength));
                Span<byte> data = _buffer.AsSpan(0, length);
                if (!_chain.TryRead(0, data) || !_chain.TryWrite(0, data))
                {
                    // A buffer outside RAM: this device's answer is to give it back empty and ask for a reset.
                    DataFaults++;
                    queue.Push(_chain, 0);
                    SetNeedsReset();
                    return;
                }

                queue.Push(_chain, (uint)length);
            }
        }
        while (queue.EnableNotifications());

        queue.SignalUsed();
    }

    protected override void OnReset() => Resets++;
}

/// <summary>Brings a device up the way a driver does, with queue 0 at fixed addresses of a 1 MiB RAM.</summary>
internal sealed class VirtioRig
{
    public const ulong RamBase = 0x10_0000;
    public const ulong DescriptorArea = RamBase;
    public const ulong DriverArea = RamBase + 0x1_0000;
    public const ulong DeviceArea = RamBase + 0x2_0000;
    public const ulong Buffers = RamBase + 0x4_0000;
    public const ulong Tables = RamBase + 0x8_0000;

    public VirtioRig(ulong features, ushort size = 16, ushort maxSize = 256, ulong offered = ulong.MaxValue, bool inPlace = false, bool pinnable = false)
    {
        Ram = new TestGuestRam(RamBase, 1 << 20, inPlace, pinnable);
        Transport = new TestTransport(Ram);
        Device = new EchoDevice(offered == ulong.MaxValue ? features & VirtioFeatures.Supported : offered, maxSize);
        Device.Attach(Transport);
        Features = features | VirtioFeatures.Version1;
        Negotiate();
        ConfigureQueue(size);
    }

    public TestGuestRam Ram { get; }

    public TestTransport Transport { get; }

    public EchoDevice Device { get; }

    public ulong Features { get; }

    public VirtioQueue Queue => Device.GetQueue(0);

    public static byte Bits(VirtioDeviceStatus status) => (byte)status;

    /// <summary>Enables queue 0 and sets DRIVER_OK; returns whether the queue was accepted.</summary>
    public bool Start()
    {
        bool enabled = Device.EnableQueue(0);
        Device.WriteStatus(Bits(Device.Status | VirtioDeviceStatus.DriverOk));
        return enabled;
    }

    public GuestSplitVirtqueue StartSplit()
    {
        if (!Start())
        {
            throw new InvalidOperationException($"Queue refused: {Queue.Error}");
        }

        return SplitDriver();
    }

    public GuestPackedVirtqueue StartPacked()
    {
        if (!Start())
        {
            throw new InvalidOperationException($"Queue refused: {Queue.Error}");
        }

        return new GuestPackedVirtqueue(Ram, Queue.Size, Queue.DescriptorArea, Queue.DriverArea, Queue.DeviceArea);
    }

    /// <summary>The guest driver of split queue 0, as configured.</summary>
    public GuestSplitVirtqueue SplitDriver() =>
        new(Ram, Queue.Size, Queue.DescriptorArea, Queue.DriverArea, Queue.DeviceArea, (Features & VirtioFeatures.EventIndex) != 0);

    /// <summary>
    /// Request after request as a driver makes them: a sequence number at the start of the readable part, post, kick
    /// if the driver must, take the used buffer. Counts the requests that came back right (id, length, echoed number).
    /// </summary>
    public int EchoRounds(GuestVirtqueue driver, ReadOnlySpan<GuestBuffer> buffer, uint expectedLength, int count, bool indirect = false)
    {
        ulong echoed = 0;
        foreach (GuestBuffer element in buffer)
        {
            if (element.DeviceWritable)
            {
                echoed = element.Address;
                break;
            }
        }

        int done = 0;
        for (int i = 0; i < count; i++)
        {
            Ram.SetU32(buffer[0].Address, (uint)i);
            ushort id = indirect ? driver.PostIndirect(Tables, buffer) : driver.Post(buffer);
            if (driver.KickPrepare())
            {
                Kick();
            }

            if (!driver.TryTakeUsed(out ushort usedId, out uint length) || usedId != id || length != expectedLength || Ram.U32(echoed) != (uint)i)
            {
                break;
            }

            done++;
        }

        return done;
    }

    /// <summary>Notifies queue 0, as the driver's kick does.</summary>
    public void Kick() => Device.NotifyQueue(0);

    /// <summary>Sets queue 0's size and ring addresses (after FEATURES_OK).</summary>
    public void ConfigureQueue(ushort size)
    {
        Device.SetQueueSize(0, size);
        Device.SetQueueDescriptorArea(0, DescriptorArea);
        Device.SetQueueDriverArea(0, DriverArea);
        Device.SetQueueDeviceArea(0, DeviceArea);
    }

    /// <summary>ACKNOWLEDGE, DRIVER, the features, FEATURES_OK.</summary>
    public void Negotiate()
    {
        Device.WriteStatus(Bits(VirtioDeviceStatus.Acknowledge));
        Device.WriteStatus(Bits(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver));
        Device.WriteDriverFeatures(0, (uint)Features);
        Device.WriteDriverFeatures(1, (uint)(Features >> 32));
        Device.WriteStatus(Bits(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk));
    }
}
