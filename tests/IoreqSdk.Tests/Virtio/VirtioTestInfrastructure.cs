using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using IoreqSdk.Memory;
using IoreqSdk.Virtio;

namespace IoreqSdk.Tests.Virtio;

/// <summary>Guest RAM as one byte array at a base address; every access outside it is refused and counted.</summary>
internal sealed class TestGuestRam : IGuestMemory
{
    private readonly byte[] _bytes;

    public TestGuestRam(ulong baseAddress, int size)
    {
        Base = baseAddress;
        _bytes = new byte[size];
    }

    public ulong Base { get; }

    public ulong End => Base + (ulong)_bytes.Length;

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

internal readonly record struct Segment(ulong Address, uint Length, bool Writable);

internal static class FreeList
{
    /// <summary>Indices 0..size-1, lowest on top (Linux hands out descriptors from 0 up, too).</summary>
    public static Stack<ushort> Of(int size)
    {
        var free = new Stack<ushort>(size);
        for (int i = size - 1; i >= 0; i--)
        {
            free.Push((ushort)i);
        }

        return free;
    }
}

/// <summary>
/// The guest side of a split queue, as Linux's virtio_ring drives one: a free list of descriptors, chains written
/// before their ring entry, avail.idx published last, used_event written after taking used buffers, the kick
/// decided by avail_event or the device's no-notify flag.
/// </summary>
internal sealed class SplitDriver
{
    private readonly TestGuestRam _ram;
    private readonly Stack<ushort> _free;
    private readonly int[] _chainLength;
    private ushort _numAdded;

    public SplitDriver(TestGuestRam ram, VirtioQueue queue, bool eventIndex)
    {
        _ram = ram;
        Size = queue.Size;
        Descriptors = queue.DescriptorArea;
        Avail = queue.DriverArea;
        Used = queue.DeviceArea;
        EventIndex = eventIndex;
        _chainLength = new int[Size];
        _free = FreeList.Of(Size);
    }

    public ushort Size { get; }

    public TestGuestRam Ram => _ram;

    public ulong Descriptors { get; }

    public ulong Avail { get; }

    public ulong Used { get; }

    public bool EventIndex { get; }

    public ushort AvailShadow { get; private set; }

    public ushort LastUsed { get; private set; }

    public ushort AvailEvent => _ram.U16(Used + 4 + (8UL * Size));

    public ushort UsedIndex => _ram.U16(Used + 2);

    public ushort UsedFlags => _ram.U16(Used);

    public ulong DescriptorAddress(int index) => Descriptors + (16UL * (uint)index);

    /// <summary>Posts one direct chain (readable segments first, as the caller lists them).</summary>
    public ushort Post(ReadOnlySpan<Segment> segments)
    {
        ushort head = 0;
        ushort previous = 0;
        for (int i = 0; i < segments.Length; i++)
        {
            ushort index = _free.Pop();
            if (i == 0)
            {
                head = index;
            }
            else
            {
                // Link the previous descriptor to this one.
                _ram.SetU16(DescriptorAddress(previous) + 12, (ushort)(_ram.U16(DescriptorAddress(previous) + 12) | 1));
                _ram.SetU16(DescriptorAddress(previous) + 14, index);
            }

            _ram.SetDescriptor(DescriptorAddress(index), segments[i].Address, segments[i].Length, segments[i].Writable ? (ushort)2 : (ushort)0, 0);
            previous = index;
        }

        _chainLength[head] = segments.Length;
        Publish(head);
        return head;
    }

    /// <summary>Posts one indirect descriptor whose table (at <paramref name="table"/>) holds the segments.</summary>
    public ushort PostIndirect(ulong table, ReadOnlySpan<Segment> segments)
    {
        for (int i = 0; i < segments.Length; i++)
        {
            ushort flags = (ushort)((segments[i].Writable ? 2 : 0) | (i + 1 < segments.Length ? 1 : 0));
            _ram.SetDescriptor(table + (16UL * (uint)i), segments[i].Address, segments[i].Length, flags, (ushort)(i + 1));
        }

        ushort head = _free.Pop();
        _ram.SetDescriptor(DescriptorAddress(head), table, 16U * (uint)segments.Length, 4, 0);
        _chainLength[head] = 1;
        Publish(head);
        return head;
    }

    /// <summary>Writes a raw descriptor (hostile tests).</summary>
    public void WriteDescriptor(int index, ulong address, uint length, ushort flags, ushort next) =>
        _ram.SetDescriptor(DescriptorAddress(index), address, length, flags, next);

    /// <summary>Puts a head in the next available slot and publishes it (hostile tests name any head).</summary>
    public void Publish(ushort head)
    {
        _ram.SetU16(Avail + 4 + (2UL * (uint)(AvailShadow & (Size - 1))), head);
        AvailShadow++;
        _numAdded++;
        _ram.SetU16(Avail + 2, AvailShadow);
    }

    public void SetAvailIndex(ushort value) => _ram.SetU16(Avail + 2, value);

    public void SetUsedEvent(ushort value) => _ram.SetU16(Avail + 4 + (2UL * Size), value);

    public void SetNoInterrupt(bool on) => _ram.SetU16(Avail, on ? (ushort)1 : (ushort)0);

    /// <summary>Linux's virtqueue_kick_prepare: whether the buffers added since the last call need a kick.</summary>
    public bool KickPrepare()
    {
        ushort newIndex = AvailShadow;
        ushort old = (ushort)(newIndex - _numAdded);
        _numAdded = 0;
        return EventIndex
            ? (ushort)(newIndex - AvailEvent - 1) < (ushort)(newIndex - old)
            : (UsedFlags & 1) == 0;
    }

    public bool TryTakeUsed(out uint id, out uint length)
    {
        id = 0;
        length = 0;
        if (LastUsed == UsedIndex)
        {
            return false;
        }

        ulong element = Used + 4 + (8UL * (uint)(LastUsed & (Size - 1)));
        id = _ram.U32(element);
        length = _ram.U32(element + 4);
        LastUsed++;
        if (id < Size)
        {
            ushort index = (ushort)id;
            int chainLength = _chainLength[index];
            for (int i = 0; i < chainLength; i++)
            {
                ushort next = _ram.U16(DescriptorAddress(index) + 14);
                _free.Push(index);
                index = next;
            }
        }

        if (EventIndex)
        {
            // Interrupt me for the next used buffer.
            SetUsedEvent(LastUsed);
        }

        return true;
    }
}

/// <summary>
/// The guest side of a packed queue, as Linux's virtio_ring drives one: buffer ids from a free list, the first
/// descriptor's flags written last, the used ring walked by each buffer's descriptor count.
/// </summary>
internal sealed class PackedDriver
{
    private readonly TestGuestRam _ram;
    private readonly Stack<ushort> _freeIds;
    private readonly int[] _slots;
    private ushort _numAdded;

    public PackedDriver(TestGuestRam ram, VirtioQueue queue)
    {
        _ram = ram;
        Size = queue.Size;
        Ring = queue.DescriptorArea;
        DriverEvent = queue.DriverArea;
        DeviceEvent = queue.DeviceArea;
        _slots = new int[Size];
        _freeIds = FreeList.Of(Size);
    }

    public ushort Size { get; }

    public TestGuestRam Ram => _ram;

    public ulong Ring { get; }

    public ulong DriverEvent { get; }

    public ulong DeviceEvent { get; }

    public ushort NextAvail { get; private set; }

    public bool AvailWrap { get; private set; } = true;

    public ushort NextUsed { get; private set; }

    public bool UsedWrap { get; private set; } = true;

    public ulong SlotAddress(int position) => Ring + (16UL * (uint)position);

    public static ushort AvailFlags(bool wrap) => wrap ? (ushort)(1 << 7) : (ushort)(1 << 15);

    public ushort Post(ReadOnlySpan<Segment> segments)
    {
        ushort id = _freeIds.Pop();
        ushort firstFlags = 0;
        ushort firstPosition = NextAvail;
        for (int i = 0; i < segments.Length; i++)
        {
            ushort flags = (ushort)(AvailFlags(AvailWrap) | (segments[i].Writable ? 2 : 0) | (i + 1 < segments.Length ? 1 : 0));
            if (i == 0)
            {
                firstFlags = flags;
                _ram.SetDescriptor(SlotAddress(NextAvail), segments[i].Address, segments[i].Length, id, 0);
            }
            else
            {
                _ram.SetDescriptor(SlotAddress(NextAvail), segments[i].Address, segments[i].Length, id, flags);
            }

            Advance();
        }

        // The first descriptor's flags go last: the device never sees a partial list.
        _ram.SetU16(SlotAddress(firstPosition) + 14, firstFlags);
        _slots[id] = segments.Length;
        _numAdded += (ushort)segments.Length;
        return id;
    }

    public ushort PostIndirect(ulong table, ReadOnlySpan<Segment> segments)
    {
        for (int i = 0; i < segments.Length; i++)
        {
            _ram.SetDescriptor(table + (16UL * (uint)i), segments[i].Address, segments[i].Length, 0, segments[i].Writable ? (ushort)2 : (ushort)0);
        }

        ushort id = _freeIds.Pop();
        _ram.SetDescriptor(SlotAddress(NextAvail), table, 16U * (uint)segments.Length, id, (ushort)(AvailFlags(AvailWrap) | 4));
        Advance();
        _slots[id] = 1;
        _numAdded++;
        return id;
    }

    /// <summary>Writes a raw descriptor at a ring position (hostile tests).</summary>
    public void WriteDescriptor(int position, ulong address, uint length, ushort id, ushort flags) =>
        _ram.SetDescriptor(SlotAddress(position), address, length, id, flags);

    public void SetDriverEvent(ushort flags, ushort offWrap = 0)
    {
        _ram.SetU16(DriverEvent, offWrap);
        _ram.SetU16(DriverEvent + 2, flags);
    }

    public ushort DeviceEventFlags => _ram.U16(DeviceEvent + 2);

    public ushort DeviceEventOffWrap => _ram.U16(DeviceEvent);

    /// <summary>Linux's kick decision for a packed ring, from the device event suppression structure.</summary>
    public bool KickPrepare()
    {
        ushort newIndex = NextAvail;
        ushort old = (ushort)(newIndex - _numAdded);
        _numAdded = 0;
        ushort flags = DeviceEventFlags;
        if (flags != 2)
        {
            return flags != 1;
        }

        ushort offWrap = DeviceEventOffWrap;
        ushort eventIndex = (ushort)(offWrap & 0x7FFF);
        if (((offWrap & 0x8000) != 0) != AvailWrap)
        {
            eventIndex = (ushort)(eventIndex - Size);
        }

        return (ushort)(newIndex - eventIndex - 1) < (ushort)(newIndex - old);
    }

    public bool TryTakeUsed(out ushort id, out uint length)
    {
        id = 0;
        length = 0;
        ushort flags = _ram.U16(SlotAddress(NextUsed) + 14);
        bool avail = (flags & (1 << 7)) != 0;
        bool used = (flags & (1 << 15)) != 0;
        if (avail != UsedWrap || used != UsedWrap)
        {
            return false;
        }

        length = _ram.U32(SlotAddress(NextUsed) + 8);
        id = _ram.U16(SlotAddress(NextUsed) + 12);
        int next = NextUsed + _slots[id];
        if (next >= Size)
        {
            next -= Size;
            UsedWrap = !UsedWrap;
        }

        NextUsed = (ushort)next;
        _freeIds.Push(id);
        return true;
    }

    private void Advance()
    {
        NextAvail++;
        if (NextAvail == Size)
        {
            NextAvail = 0;
            AvailWrap = !AvailWrap;
        }
    }
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

    public VirtioRig(ulong features, ushort size = 16, ushort maxSize = 256, ulong offered = ulong.MaxValue)
    {
        Ram = new TestGuestRam(RamBase, 1 << 20);
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

    public SplitDriver StartSplit()
    {
        if (!Start())
        {
            throw new InvalidOperationException($"Queue refused: {Queue.Error}");
        }

        return new SplitDriver(Ram, Queue, (Features & VirtioFeatures.EventIndex) != 0);
    }

    public PackedDriver StartPacked()
    {
        if (!Start())
        {
            throw new InvalidOperationException($"Queue refused: {Queue.Error}");
        }

        return new PackedDriver(Ram, Queue);
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
