using System;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Threading;
using BenchmarkDotNet.Attributes;
using IoreqSdk.Memory;
using IoreqSdk.Virtio;

namespace IoreqSdk.Benchmarks;

/// <summary>
/// A device's side of a split virtqueue — the SDK's <see cref="VirtioQueue"/> popping a three-descriptor chain (a
/// virtio-blk request's shape: 16-byte header, 512-byte data, 1-byte status), reading the header, writing the status
/// byte and pushing the chain used — on the layout <c>benchmarks/native/virtqueue.c</c> serves in C: 85 chains per
/// round in a 256-entry ring, the driver asking for no interrupts. Per chain.
/// </summary>
/// <remarks>
/// The paired runner drives this ring with the C file's own driver functions (<see cref="UseDriver"/>), so both sides
/// run the same driver code and differ in the consumer only; BenchmarkDotNet (for bytes per chain) uses
/// <see cref="ManagedDriver"/>, the same steps in C#.
/// </remarks>
public unsafe class VirtqueueBenchmarks : IDisposable
{
    /// <summary>Chains per round, as in virtqueue.c.</summary>
    public const int Chains = 85;

    /// <summary>The guest-physical address the ring's RAM starts at, as in virtqueue.c.</summary>
    public const ulong RamBase = 0x4000_0000;

    private const int RamSize = 1 << 20;
    private const ushort QueueSize = 256;

    private readonly VirtioDescriptorChain _chain = new();
    private readonly byte[] _header = new byte[16];
    private readonly byte[] _status = new byte[1];
    private byte* _ram;
    private BenchDevice _device = null!;
    private VirtioQueue _queue = null!;
    private delegate* unmanaged[SuppressGCTransition]<VirtqueueDriver*, void> _post;
    private delegate* unmanaged[SuppressGCTransition]<VirtqueueDriver*, int> _reap;
    private VirtqueueDriver* _driver;

    /// <summary>The ring's RAM (for the C driver's initialisation).</summary>
    internal byte* Ram => _ram;

    [GlobalSetup]
    public void Setup()
    {
        _ram = (byte*)NativeMemory.AlignedAlloc(RamSize, 4096);
        _driver = (VirtqueueDriver*)NativeMemory.AllocZeroed((nuint)sizeof(VirtqueueDriver));
        ManagedDriver.Init(_driver, _ram, RamBase);

        _device = new BenchDevice();
        _device.Attach(new BenchTransport(new NativeRam(_ram, RamBase, RamSize)));
        _device.WriteStatus((byte)VirtioDeviceStatus.Acknowledge);
        _device.WriteStatus((byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver));
        _device.WriteDriverFeatures(1, (uint)(VirtioFeatures.Version1 >> 32));
        _device.WriteStatus((byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk));
        _device.SetQueueSize(0, QueueSize);
        _device.SetQueueDescriptorArea(0, RamBase + 0x0000);
        _device.SetQueueDriverArea(0, RamBase + 0x1000);
        _device.SetQueueDeviceArea(0, RamBase + 0x2000);
        if (!_device.EnableQueue(0))
        {
            throw new InvalidOperationException("The benchmark's queue did not enable.");
        }

        _device.WriteStatus((byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.FeaturesOk | VirtioDeviceStatus.DriverOk));
        _queue = _device.GetQueue(0);
    }

    /// <summary>Drives the ring with native driver functions (virtqueue.c's) instead of <see cref="ManagedDriver"/>.</summary>
    /// <param name="init">vq_driver_init.</param>
    /// <param name="post">vq_driver_post.</param>
    /// <param name="reap">vq_driver_reap.</param>
    internal void UseDriver(delegate* unmanaged<VirtqueueDriver*, byte*, ulong, void> init, delegate* unmanaged[SuppressGCTransition]<VirtqueueDriver*, void> post, delegate* unmanaged[SuppressGCTransition]<VirtqueueDriver*, int> reap)
    {
        // A fresh ring for the other driver: the device's queue restarts from index 0 (reset and set up again).
        GlobalCleanup();
        Setup();
        init(_driver, _ram, RamBase);
        _post = post;
        _reap = reap;
    }

    /// <summary>One round: the driver posts 85 chains, the device serves them all, the driver reaps them.</summary>
    /// <returns>Chains served, or -1 when one came back wrong.</returns>
    [Benchmark(OperationsPerInvoke = Chains)]
    public int PopPush()
    {
        if (_post != null)
        {
            _post(_driver);
        }
        else
        {
            ManagedDriver.Post(_driver);
        }

        // The loop's objects in locals, as virtqueue.c's serve() has its pointers in parameters.
        VirtioQueue queue = _queue;
        VirtioDescriptorChain chain = _chain;
        byte[] header = _header;
        byte[] status = _status;
        int served = 0;
        while (queue.TryPop(chain))
        {
            // The device's work: the request header in, one status byte out at the end of the writable part.
            chain.TryRead(0, header);
            status[0] = header[0];
            chain.TryWrite(chain.WritableLength - 1, status);
            queue.Push(chain, 513);
            served++;
        }

        queue.SignalUsed();
        int reaped = _post != null ? _reap(_driver) : ManagedDriver.Reap(_driver);
        return reaped == served ? served : -1;
    }

    [GlobalCleanup]
    public void GlobalCleanup()
    {
        NativeMemory.AlignedFree(_ram);
        NativeMemory.Free(_driver);
        _ram = null;
        _driver = null;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        GlobalCleanup();
        GC.SuppressFinalize(this);
    }

    /// <summary>virtqueue.c's <c>struct vq_driver</c>, field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct VirtqueueDriver
    {
        public byte* Ram;
        public ulong Base;
        public ushort AvailIndex;
        public ushort LastUsed;
        public uint Reaped;
    }

    /// <summary>virtqueue.c's driver, step for step, for BenchmarkDotNet's process (which loads no native library).</summary>
    internal static class ManagedDriver
    {
        public static void Init(VirtqueueDriver* d, byte* ram, ulong baseAddress)
        {
            new Span<byte>(ram, 0x3000).Clear();
            *d = new VirtqueueDriver { Ram = ram, Base = baseAddress };
            var table = new Span<byte>(ram, QueueSize * 16);
            for (int c = 0; c < Chains; c++)
            {
                Descriptor(table, 3 * c, baseAddress + 0x10000 + (16UL * (uint)c), 16, 1, (ushort)((3 * c) + 1));
                Descriptor(table, (3 * c) + 1, baseAddress + 0x20000 + (512UL * (uint)c), 512, 3, (ushort)((3 * c) + 2));
                Descriptor(table, (3 * c) + 2, baseAddress + 0x80000 + (uint)c, 1, 2, 0);
                new Span<byte>(ram + 0x10000 + (16 * c), 16).Fill((byte)c);
            }

            *(ushort*)(ram + 0x1000) = 1; // VRING_AVAIL_F_NO_INTERRUPT
        }

        public static void Post(VirtqueueDriver* d)
        {
            ushort* ring = (ushort*)(d->Ram + 0x1004);
            for (int c = 0; c < Chains; c++)
            {
                ring[(ushort)(d->AvailIndex + c) & (QueueSize - 1)] = (ushort)(3 * c);
            }

            d->AvailIndex = (ushort)(d->AvailIndex + Chains);

            // The ring entries before the index the device reads them by (release).
            Volatile.Write(ref *(ushort*)(d->Ram + 0x1002), d->AvailIndex);
        }

        public static int Reap(VirtqueueDriver* d)
        {
            // The used elements are read after the index that publishes them (acquire).
            ushort end = Volatile.Read(ref *(ushort*)(d->Ram + 0x2002));
            int n = 0;
            for (; d->LastUsed != end; d->LastUsed++, n++)
            {
                byte* element = d->Ram + 0x2004 + (8 * (d->LastUsed & (QueueSize - 1)));
                uint id = *(uint*)element;
                uint length = *(uint*)(element + 4);
                if (id % 3 != 0 || id >= 3 * Chains || length != 513 || d->Ram[0x80000 + (id / 3)] != (byte)(id / 3))
                {
                    return -1;
                }
            }

            d->Reaped += (uint)n;
            return n;
        }

        private static void Descriptor(Span<byte> table, int index, ulong address, uint length, ushort flags, ushort next)
        {
            Span<byte> d = table.Slice(index * 16, 16);
            BinaryPrimitives.WriteUInt64LittleEndian(d, address);
            BinaryPrimitives.WriteUInt32LittleEndian(d[8..], length);
            BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
            BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
        }
    }

    /// <summary>
    /// Guest RAM as one native block: bounds-checked copies and host addresses, as virtqueue.c's translate(); like the
    /// server's map cache, it gives a ring's host address only inside one page.
    /// </summary>
    private sealed class NativeRam : IDirectGuestMemory
    {
        private readonly byte* _ram;
        private readonly ulong _base;
        private readonly ulong _size;

        public NativeRam(byte* ram, ulong baseAddress, int size)
        {
            _ram = ram;
            _base = baseAddress;
            _size = (ulong)size;
        }

        public long MappingGeneration => 0;

        public bool TryGetHostAddress(ulong address, int length, out nint hostAddress)
        {
            ulong offset = address - _base;
            hostAddress = 0;
            if (address < _base || offset > _size || length < 1 || (ulong)length > _size - offset || (offset & 0xFFF) + (ulong)length > 0x1000)
            {
                return false;
            }

            hostAddress = (nint)(_ram + offset);
            return true;
        }

        public bool TryRead(ulong address, Span<byte> destination)
        {
            ulong offset = address - _base;
            if (address < _base || offset > _size || (ulong)destination.Length > _size - offset)
            {
                return false;
            }

            HostCopy.Copy(new ReadOnlySpan<byte>(_ram + offset, destination.Length), destination);
            return true;
        }

        public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
        {
            ulong offset = address - _base;
            if (address < _base || offset > _size || (ulong)source.Length > _size - offset)
            {
                return false;
            }

            HostCopy.Copy(source, new Span<byte>(_ram + offset, source.Length));
            return true;
        }
    }

    private sealed class BenchTransport : IVirtioTransport
    {
        public BenchTransport(IGuestMemory memory) => Memory = memory;

        public IGuestMemory Memory { get; }

        public long UsedNotifications { get; private set; }

        public void NotifyUsedBuffers(int queueIndex) => UsedNotifications++;

        public void NotifyConfigChange()
        {
        }
    }

    /// <summary>A device with one 256-entry queue whose buffers the benchmark serves itself.</summary>
    private sealed class BenchDevice : VirtioDevice
    {
        public BenchDevice()
            : base(deviceType: 2, VirtioFeatures.Version1, new ushort[] { QueueSize }, configSize: 0)
        {
        }

        protected override void OnQueueNotified(VirtioQueue queue)
        {
        }
    }
}
